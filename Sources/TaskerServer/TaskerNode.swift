import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import TaskerAuth
import TaskerDispatch
import TaskerEngine
import TaskerHTTP
import TaskerQueue
import TaskerRPC
import TaskerStore
import TaskerTLS

/// One running node: the RPC server with the Tasker services on a Postgres, and, with a
/// Redis, the Workers service and this node's dispatcher.
public final class TaskerNode: Service, Sendable {
    public let server: RPCServer
    public let engine: TaskEngine
    public let dispatcher: Dispatcher?
    public let hub: UpdateHub
    private let relay: UpdateRelay?
    public let name: String
    private let logger: Logger

    public struct Settings: Sendable {
        public var host = "127.0.0.1"
        public var port = 7420
        public var databaseURL: String
        public var databaseConnections = 8
        public var redisURL: String?
        public var name = ProcessInfo.processInfo.hostName
        public var dispatch = DispatchConfiguration()
        /// The clock dispatch reads and waits on; tests move one by hand.
        public var dispatchClock: any UnixClock = SystemUnixClock()
        /// Updates a StreamStepUpdates watcher may have waiting before it is cut off.
        public var watcherBuffer = 4096
        /// How long a watcher of one task hears nothing before the stored history is read.
        public var watcherQuietInterval: Duration = .seconds(2)
        /// TLS on the RPC port; nil serves plaintext h2c.
        public var tls: ServerTLS?
        /// Every call but health's needs an API token whose role permits it.
        public var auth = false
        /// The HTTP port (probes, metrics); nil serves none.
        public var http: HTTPSettings?
        /// Finished tasks older than this many seconds are deleted; nil keeps every one.
        public var retention: Double?
        /// How often retention looks for tasks to delete.
        public var retentionInterval: Duration = .seconds(60)
        /// Whether a schedule's cron may have a sixth field of seconds in front (for tests).
        public var cronWithSeconds = false

        public init(databaseURL: String, redisURL: String? = nil) {
            self.databaseURL = databaseURL
            self.redisURL = redisURL
        }
    }

    /// The HTTP port beside the RPC port.
    public struct HTTPSettings: Sendable {
        /// 0: a free port.
        public var port: Int
        /// TLS offering `http/1.1`, from the same files as the RPC port's.
        public var security: (any ServerConnectionSecurity)?
        /// The Prometheus text of every metric, for `/metrics`; nil leaves it out.
        public var metrics: (@Sendable () -> [UInt8])?

        public init(port: Int, security: (any ServerConnectionSecurity)? = nil, metrics: (@Sendable () -> [UInt8])? = nil) {
            self.port = port
            self.security = security
            self.metrics = metrics
        }
    }

    /// The HTTP port, when it is served.
    public let http: HTTPServer?
    /// The node's parts, stopped in reverse order on graceful shutdown.
    private let group: ServiceGroup
    /// The node's life when it was started by `start`.
    private let running = NIOLockedValueBox<Task<Void, any Error>?>(nil)

    /// Whether this node knows that another node has watchers, and so relays its updates.
    public var relaysUpdates: Bool { relay?.othersWatching ?? false }

    private init(
        server: RPCServer, engine: TaskEngine, dispatcher: Dispatcher?, hub: UpdateHub, relay: UpdateRelay?, http: HTTPServer?,
        parts: [any Service], name: String, logger: Logger
    ) {
        self.name = name
        self.logger = logger
        self.http = http
        self.hub = hub
        self.relay = relay
        self.server = server
        self.engine = engine
        self.dispatcher = dispatcher
        group = ServiceGroup(configuration: .init(services: parts.map { .init(service: $0) }, logger: logger))
    }

    /// Migrates the database, then starts the node's parts in order, so that it serves when
    /// this returns; `run()` then holds them until graceful shutdown. What fails to start is
    /// thrown, with everything started before it stopped.
    public static func assemble(_ settings: Settings, logger: Logger = Logger(label: "tasker")) async throws -> TaskerNode {
        let redis = try settings.redisURL.map { try RedisURL(parsing: $0) }
        let criteria = try settings.retention.map { seconds throws(EngineError) in try PruneCriteria(olderThan: seconds) }
        let pool = PostgresPool(url: settings.databaseURL, size: settings.databaseConnections)
        // In the order they start; the node stops them in reverse.
        var parts: [any Service] = [StartedPart { await pool.shutdown() }]
        // Joined the cluster before the servers start, it stops before them (see below).
        var dispatcher: Dispatcher?
        do {
            let applied = try await Migrator().migrate(pool)
            if !applied.isEmpty { logger.info("applied schema migrations", metadata: ["versions": "\(applied)"]) }
            let engine = TaskEngine(pool: pool, cronWithSeconds: settings.cronWithSeconds)
            let hub = UpdateHub(bufferLimit: settings.watcherBuffer)
            engine.observe(hub)
            let tokens = TokenStore(pool: pool)
            let gate = settings.auth ? TokenGate(store: tokens) : nil
            var services: [any RPCService] = [
                TaskerService(engine: engine, hub: hub, quietInterval: settings.watcherQuietInterval, nodeTimeout: settings.dispatch.nodeTimeout),
                AdminService(store: tokens, gate: gate),
                try TaskerService.reflection(withWorkers: redis != nil),
            ]
            var relay: UpdateRelay?
            if let redis {
                let nodeID = UUID().uuidString.lowercased()
                let steps = StepQueue(url: redis, consumer: nodeID, agingInterval: settings.dispatch.agingInterval)
                parts.append(StartedPart { await steps.shutdown() })
                let updates = UpdateRelay(url: redis, nodeID: nodeID, hub: hub, logger: logger)
                await updates.listen()
                parts.append(updates)
                relay = updates
                let node = Dispatcher(
                    engine: engine, queue: steps, nodeName: settings.name, configuration: settings.dispatch, clock: settings.dispatchClock)
                await node.start()
                services.append(WorkersService(dispatcher: node, gate: gate))
                dispatcher = node
            }
            var configuration = RPCServer.Configuration(host: settings.host, port: settings.port)
            configuration.security = settings.tls
            configuration.gate = gate
            let rpc = try await RPCServer.start(configuration: configuration, services: services, logger: logger)
            let probes = Readiness(databaseURL: settings.databaseURL, redis: redis, health: rpc.health, logger: logger)
            parts.append(probes)
            parts.append(StartedPart { await rpc.shutdownGracefully() })
            await probes.probeNow()
            var http: HTTPServer?
            if let port = settings.http?.port {
                let served = try await HTTPServer.start(
                    configuration: .init(host: settings.host, port: port, security: settings.http?.security),
                    routes: [
                        ProbeRoutes(readiness: { probes.checks }, metrics: settings.http?.metrics),
                        APIRoutes(calls: rpc.local, gate: gate),
                        DashboardRoutes(),
                    ], logger: logger)
                parts.append(StartedPart { await served.shutdown() })
                http = served
            }
            // Watchers are told to resume elsewhere rather than keep the servers from stopping.
            parts.append(StartedPart { hub.closeAll() })
            // The dispatcher stops before the servers: it ends the workers' streams, whose
            // running attempts fail as lost, to run elsewhere.
            if let dispatcher { parts.append(dispatcher) }
            parts.append(ScheduleFiring(engine: engine, logger: logger))
            if let criteria { parts.append(RetentionSweep(engine: engine, criteria: criteria, interval: settings.retentionInterval, logger: logger)) }
            logger.info("node started", metadata: [
                "name": .string(settings.name), "version": .string(TaskerVersion.current),
                "node": .string(dispatcher?.nodeID ?? "without Redis: no dispatch"),
                "rpc_port": .stringConvertible(rpc.port), "http_port": .stringConvertible(http?.port ?? 0)])
            return TaskerNode(
                server: rpc, engine: engine, dispatcher: dispatcher, hub: hub, relay: relay, http: http, parts: parts,
                name: settings.name, logger: logger)
        } catch {
            let started = ServiceGroup(configuration: .init(services: (parts + [dispatcher].compactMap { $0 }).map { .init(service: $0) }, logger: logger))
            await started.triggerGracefulShutdown()
            try? await started.run()
            throw error
        }
    }

    /// Assembles a node and runs it apart, until `shutdown`.
    public static func start(_ settings: Settings, logger: Logger = Logger(label: "tasker")) async throws -> TaskerNode {
        let node = try await assemble(settings, logger: logger)
        node.running.withLockedValue { $0 = Task { try await node.run() } }
        return node
    }

    /// Serves until graceful shutdown; then the parts stop, newest first: retention, the
    /// dispatcher (ending the workers' streams: their running attempts fail as lost, to run
    /// elsewhere), the watchers, the HTTP and RPC servers (letting the calls underway finish),
    /// readiness, the update relay, the queue and the pool.
    public func run() async throws {
        try await group.run()
        logger.info("node stopped", metadata: ["name": .string(name), "node": .string(dispatcher?.nodeID ?? "")])
    }

    /// Shuts a node that `start` runs down gracefully, and returns when it has stopped.
    public func shutdown() async {
        await group.triggerGracefulShutdown()
        _ = await running.withLockedValue { $0 }?.result
    }
}
