import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A gRPC server on HTTP/2: with prior knowledge (h2c), or over TLS when configured with a
/// `security`. Every server also answers `grpc.health.v1.Health`.
public final class RPCServer: Sendable {
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        /// Larger request messages end the call with RESOURCE_EXHAUSTED.
        public var maxReceiveMessageSize: Int = 4 << 20
        /// Bytes of response a stream may hold before `write` waits.
        public var streamSendBufferSize: Int = 256 << 10
        /// Bytes of unread requests a stream may hold before its window stops opening.
        public var streamReceiveBufferSize: Int = 1 << 20
        /// PING after this long without input; nil turns keepalive off.
        public var keepaliveInterval: TimeAmount? = .seconds(60)
        public var keepaliveTimeout: TimeAmount = .seconds(20)
        /// How long in-flight calls get to finish after a graceful shutdown begins.
        public var shutdownGracePeriod: TimeAmount = .seconds(30)
        /// Handlers start on their connection's event loop (no thread hop for the response).
        /// They must never block; turn this off for handlers that might.
        public var handlersRunOnEventLoop: Bool = true
        var http2 = HTTP2Settings()
        /// What secures every connection (TLS); nil serves plaintext h2c.
        public var security: (any ServerConnectionSecurity)?
        /// What every call passes before its handler runs; nil admits all.
        public var gate: (any CallGate)?

        public var maxConcurrentStreams: UInt32 {
            get { http2.maxConcurrentStreams }
            set { http2.maxConcurrentStreams = newValue }
        }

        public init(host: String = "127.0.0.1", port: Int) {
            self.host = host
            self.port = port
        }
    }

    public let configuration: Configuration
    public let health: HealthService
    /// The same methods, for callers inside this process (the HTTP API).
    public let local: LocalCalls
    private let channel: any Channel
    private let group: any EventLoopGroup
    private let ownsGroup: Bool
    private let connections: NIOLockedValueBox<[ObjectIdentifier: any Channel]>
    private let logger: Logger

    /// The port the server listens on (the one chosen by the system when configured as 0).
    public var port: Int { channel.localAddress?.port ?? configuration.port }

    private init(
        configuration: Configuration, health: HealthService, local: LocalCalls, channel: any Channel, group: any EventLoopGroup,
        ownsGroup: Bool, connections: NIOLockedValueBox<[ObjectIdentifier: any Channel]>, logger: Logger
    ) {
        self.configuration = configuration
        self.health = health
        self.local = local
        self.channel = channel
        self.group = group
        self.ownsGroup = ownsGroup
        self.connections = connections
        self.logger = logger
    }

    /// Binds and starts serving `services`.
    public static func start(
        configuration: Configuration,
        services: [any RPCService],
        group: (any EventLoopGroup)? = nil,
        logger: Logger = Logger(label: "tasker.rpc.server")
    ) async throws -> RPCServer {
        let health = HealthService()
        var routes = RPCRouter()
        routes.add(services + [health])
        let router = routes
        for service in router.services { health.setStatus(.serving, service: service) }

        let ownsGroup = group == nil
        let group = group ?? MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let connections = NIOLockedValueBox<[ObjectIdentifier: any Channel]>([:])
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 32 << 10, high: 256 << 10))
            .childChannelInitializer { channel in
                let key = ObjectIdentifier(channel)
                connections.withLockedValue { $0[key] = channel }
                channel.closeFuture.whenComplete { _ in
                    _ = connections.withLockedValue { $0.removeValue(forKey: key) }
                }
                return channel.eventLoop.makeCompletedFuture {
                    try configuration.security?.secure(channel)
                    try channel.pipeline.syncOperations.addHandler(
                        ServerConnectionHandler(configuration: configuration, router: router, logger: logger))
                }
            }
        do {
            let channel = try await bootstrap.bind(host: configuration.host, port: configuration.port).get()
            return RPCServer(
                configuration: configuration, health: health, local: LocalCalls(router: router, gate: configuration.gate),
                channel: channel, group: group,
                ownsGroup: ownsGroup, connections: connections, logger: logger)
        } catch {
            if ownsGroup { try? await group.shutdownGracefully() }
            throw error
        }
    }

    /// Stops accepting connections, sends GOAWAY on each open one, lets in-flight calls finish
    /// (up to the grace period), then returns once every connection is closed.
    public func shutdownGracefully() async {
        health.shutdown()
        try? await channel.close()
        let open = connections.withLockedValue { Array($0.values) }
        for connection in open {
            connection.pipeline.fireUserInboundEventTriggered(GracefulShutdownEvent())
        }
        for connection in open {
            try? await connection.closeFuture.get()
        }
        if ownsGroup { try? await group.shutdownGracefully() }
    }

    /// Closes the listener and every connection at once.
    public func shutdownNow() async {
        health.shutdown()
        try? await channel.close()
        let open = connections.withLockedValue { Array($0.values) }
        for connection in open { try? await connection.close() }
        if ownsGroup { try? await group.shutdownGracefully() }
    }

    /// Returns when the listening socket has closed.
    public func waitUntilClosed() async throws {
        try await channel.closeFuture.get()
    }

    /// The number of open client connections.
    public var connectionCount: Int {
        connections.withLockedValue { $0.count }
    }
}
