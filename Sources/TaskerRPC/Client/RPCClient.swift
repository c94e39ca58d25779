import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SwiftProtobuf

#if canImport(Glibc)
import Glibc
#endif

/// A gRPC client on one HTTP/2 connection (h2c with prior knowledge, or HTTP/2 over TLS),
/// shared by every call. When the connection is lost or the server sends GOAWAY, the next call
/// opens a new one.
public final class RPCClient: Sendable {
    public struct Configuration: Sendable {
        /// Larger response messages fail the call with RESOURCE_EXHAUSTED.
        public var maxReceiveMessageSize: Int = 4 << 20
        /// Bytes of request a stream may hold before `send` waits.
        public var streamSendBufferSize: Int = 256 << 10
        /// Bytes of unread responses a stream may hold before its window stops opening.
        public var streamReceiveBufferSize: Int = 1 << 20
        public var connectTimeout: TimeAmount = .seconds(10)
        /// Bytes of responses the server may send on a stream before this side returns
        /// window (HTTP/2 SETTINGS_INITIAL_WINDOW_SIZE): what an unread stream can hold in flight.
        public var streamWindowSize: UInt32 {
            get { http2.initialStreamWindow }
            set { http2.initialStreamWindow = max(newValue, 1 << 10) }
        }
        var http2 = HTTP2Settings(maxConcurrentStreams: 100)
        /// What secures the connection (TLS); nil speaks plaintext h2c.
        public var security: (any ClientConnectionSecurity)?
        /// Sent with every call, before the call's own (an `authorization` token, say).
        public var metadata = Metadata()

        public init() {}
    }

    private struct Connection {
        let channel: any Channel
        let handler: NIOLoopBound<ClientConnectionHandler>
        let state: ClientConnectionState
    }

    public let host: String
    public let port: Int
    public let configuration: Configuration
    private let group: any EventLoopGroup
    private let ownsGroup: Bool
    private enum Slot {
        case connecting(EventLoopFuture<Connection>)
        case ready(Connection)
    }

    private let current = NIOLockedValueBox<Slot?>(nil)

    public init(host: String, port: Int, configuration: Configuration = Configuration(), group: (any EventLoopGroup)? = nil) {
        self.host = host
        self.port = port
        self.configuration = configuration
        self.ownsGroup = group == nil
        self.group = group ?? MultiThreadedEventLoopGroup(numberOfThreads: 1)
    }

    /// Closes the connection after its calls end, and the client's own threads.
    public func close() async {
        let slot = current.withLockedValue { current -> Slot? in
            defer { current = nil }
            return current
        }
        var connection: Connection?
        switch slot {
        case .connecting(let future)?: connection = try? await future.get()
        case .ready(let ready)?: connection = ready
        case nil: break
        }
        if let connection {
            connection.channel.eventLoop.execute { connection.handler.value.closeWhenIdle() }
            try? await connection.channel.closeFuture.get()
        }
        if ownsGroup { try? await group.shutdownGracefully() }
    }

    private func connection() -> EventLoopFuture<Connection> {
        current.withLockedValue { current in
            switch current {
            case .ready(let connection) where connection.state.isUsable && connection.channel.isActive:
                return connection.channel.eventLoop.makeSucceededFuture(connection)
            case .connecting(let future):
                return future
            default:
                break
            }
            let made = connect()
            current = .connecting(made)
            made.whenComplete { result in
                self.current.withLockedValue { current in
                    guard case .connecting(let pending)? = current, pending === made else { return }
                    switch result {
                    case .success(let connection): current = .ready(connection)
                    case .failure: current = nil
                    }
                }
            }
            return made
        }
    }

    private func connect() -> EventLoopFuture<Connection> {
        let configuration = self.configuration
        let authority = "\(host):\(port)"
        let loop = group.next()
        let host = self.host
        let secured = loop.makePromise(of: Void.self)
        if configuration.security == nil { secured.succeed() }
        return ClientBootstrap(group: loop)
            .connectTimeout(configuration.connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.writeBufferWaterMark, value: .init(low: 32 << 10, high: 256 << 10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let security = configuration.security {
                        try security.secure(channel, host: host, authority: authority).cascade(to: secured)
                    }
                    try channel.pipeline.syncOperations.addHandler(
                        ClientConnectionHandler(configuration: configuration, authority: authority))
                }
            }
            .connect(host: host, port: port)
            .flatMap { channel in
                secured.futureResult.map { channel }.flatMapErrorThrowing { error in
                    channel.close(promise: nil)
                    throw error
                }
            }
            .flatMapThrowing { channel in
                let handler = try channel.pipeline.syncOperations.handler(type: ClientConnectionHandler.self)
                return Connection(
                    channel: channel, handler: NIOLoopBound(handler, eventLoop: channel.eventLoop),
                    state: handler.connectionState)
            }
            .flatMapErrorThrowing { error in
                // A connection that failed before it was secured leaves the promise open.
                secured.fail(error)
                throw error
            }
    }

    /// Starts a call of any kind. `messages` are sent with the headers; `endRequest` closes the
    /// request side at once (unary and server-streaming calls).
    func start(
        path: String, metadata: Metadata, options: CallOptions, messages: [ByteBuffer], endRequest: Bool
    ) async throws -> RawCall {
        let connection: Connection
        do {
            connection = try await self.connection().get()
        } catch {
            throw RPCError(.unavailable, "cannot connect to \(host):\(port): \(describe(connectError: error))")
        }
        let sent = configuration.metadata.isEmpty ? metadata : configuration.metadata + metadata
        return try await connection.channel.eventLoop.submit { [host, port] in
            let handler = connection.handler.value
            guard handler.canOpenStreams else {
                throw RPCError(.unavailable, connection.state.reason ?? "the connection to \(host):\(port) closed")
            }
            let stream = handler.makeStream(path: path)
            handler.open(stream, metadata: sent, options: options, messages: messages, endRequest: endRequest)
            return RawCall(
                stream: NIOLoopBound(stream, eventLoop: connection.channel.eventLoop),
                connection: connection.handler, responses: stream.responses,
                headers: stream.headersPromise.futureResult, result: stream.resultPromise.futureResult)
        }.get()
    }

    /// "connection refused" rather than NIO's nested error values.
    private func describe(connectError error: any Error) -> String {
        if let first = (error as? NIOConnectionError)?.connectionErrors.first?.error {
            return describe(connectError: first)
        }
        if let reason = configuration.security?.describe(error, server: "\(host):\(port)") { return reason }
        if let failure = error as? IOError {
            return String(cString: strerror(failure.errnoCode))
        }
        return "\(error)"
    }

    // MARK: Typed calls

    /// A unary call: one request, one response; a non-OK status throws `RPCError`.
    public func unary<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ path: String, _ request: Request, as: Response.Type = Response.self,
        metadata: Metadata = [:], options: CallOptions = CallOptions()
    ) async throws -> Response {
        try await unaryCall(path, request, as: Response.self, metadata: metadata, options: options).message
    }

    /// A unary call, with the response's metadata.
    public func unaryCall<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ path: String, _ request: Request, as: Response.Type = Response.self,
        metadata: Metadata = [:], options: CallOptions = CallOptions()
    ) async throws -> UnaryResponse<Response> {
        let call = try await start(path: path, metadata: metadata, options: options, messages: [try request.rpcBytes()], endRequest: true)
        return try await call.singleResponse(Response.self)
    }

    /// A server-streaming call: iterate `responses`; a non-OK status is thrown at the end.
    public func serverStreaming<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ path: String, _ request: Request, as: Response.Type = Response.self,
        metadata: Metadata = [:], options: CallOptions = CallOptions()
    ) async throws -> ClientCall<Request, Response> {
        let call = try await start(path: path, metadata: metadata, options: options, messages: [try request.rpcBytes()], endRequest: true)
        return ClientCall(raw: call)
    }

    /// A client-streaming or bidirectional call: `send` requests, `finishSending`, read
    /// `responses` (or `singleResponse()` for client streaming).
    public func streaming<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ path: String, request: Request.Type = Request.self, response: Response.Type = Response.self,
        metadata: Metadata = [:], options: CallOptions = CallOptions()
    ) async throws -> ClientCall<Request, Response> {
        let call = try await start(path: path, metadata: metadata, options: options, messages: [], endRequest: false)
        return ClientCall(raw: call)
    }
}

/// A unary response with the metadata that came with it.
public struct UnaryResponse<Message: SwiftProtobuf.Message>: Sendable {
    public var message: Message
    public var initialMetadata: Metadata
    public var trailingMetadata: Metadata
}
