import Foundation
import Logging
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
public final class TaskerNode: Sendable {
    public let server: RPCServer
    public let engine: TaskEngine
    public let dispatcher: Dispatcher?
    private let pool: PostgresPool
    private let queue: StepQueue?
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
    private let readiness: Readiness
    private let retention: RetentionSweep?
    /// The dispatcher's life, while it runs.
    private let dispatching: RunningService?

    /// Whether this node knows that another node has watchers, and so relays its updates.
    public var relaysUpdates: Bool { relay?.othersWatching ?? false }

    private init(
        server: RPCServer, engine: TaskEngine, dispatcher: Dispatcher?, dispatching: RunningService?, pool: PostgresPool, queue: StepQueue?,
        hub: UpdateHub, relay: UpdateRelay?, http: HTTPServer?, readiness: Readiness, retention: RetentionSweep?, name: String, logger: Logger
    ) {
        self.name = name
        self.logger = logger
        self.retention = retention
        self.http = http
        self.readiness = readiness
        self.hub = hub
        self.relay = relay
        self.server = server
        self.engine = engine
        self.dispatcher = dispatcher
        self.dispatching = dispatching
        self.pool = pool
        self.queue = queue
    }

    /// Migrates the database, then serves.
    public static func start(_ settings: Settings, logger: Logger = Logger(label: "tasker")) async throws -> TaskerNode {
        let redis = try settings.redisURL.map { try RedisURL(parsing: $0) }
        let criteria = try settings.retention.map { seconds throws(EngineError) in try PruneCriteria(olderThan: seconds) }
        let pool = PostgresPool(url: settings.databaseURL, size: settings.databaseConnections)
        do {
            let applied = try await Migrator().migrate(pool)
            if !applied.isEmpty { logger.info("applied schema migrations", metadata: ["versions": "\(applied)"]) }
        } catch {
            await pool.shutdown()
            throw error
        }
        let engine = TaskEngine(pool: pool)
        let hub = UpdateHub(bufferLimit: settings.watcherBuffer)
        engine.observe(hub)
        let tokens = TokenStore(pool: pool)
        let gate = settings.auth ? TokenGate(store: tokens) : nil
        var services: [any RPCService] = [
            TaskerService(engine: engine, hub: hub, quietInterval: settings.watcherQuietInterval, nodeTimeout: settings.dispatch.nodeTimeout),
            AdminService(store: tokens, gate: gate),
            try TaskerService.reflection(withWorkers: redis != nil),
        ]
        var queue: StepQueue?
        var dispatcher: Dispatcher?
        var dispatching: RunningService?
        var relay: UpdateRelay?
        if let redis {
            let nodeID = UUID().uuidString.lowercased()
            let updates = UpdateRelay(url: redis, nodeID: nodeID, hub: hub, logger: logger)
            await updates.waitUntilListening()
            relay = updates
            let steps = StepQueue(url: redis, consumer: nodeID)
            let node = Dispatcher(
                engine: engine, queue: steps, nodeName: settings.name, configuration: settings.dispatch, clock: settings.dispatchClock)
            await node.start()
            dispatching = RunningService.start(node, logger: logger)
            services.append(WorkersService(dispatcher: node, gate: gate))
            queue = steps
            dispatcher = node
        }
        var server: RPCServer?
        var readiness: Readiness?
        do {
            var configuration = RPCServer.Configuration(host: settings.host, port: settings.port)
            configuration.security = settings.tls
            configuration.gate = gate
            let rpc = try await RPCServer.start(configuration: configuration, services: services, logger: logger)
            server = rpc
            let probes = Readiness(databaseURL: settings.databaseURL, redis: redis, health: rpc.health, logger: logger)
            readiness = probes
            await probes.start()
            var http: HTTPServer?
            if let port = settings.http?.port {
                http = try await HTTPServer.start(
                    configuration: .init(host: settings.host, port: port, security: settings.http?.security),
                    routes: [
                        ProbeRoutes(readiness: { probes.checks }, metrics: settings.http?.metrics),
                        APIRoutes(calls: rpc.local, gate: gate),
                        DashboardRoutes(),
                    ], logger: logger)
            }
            logger.info("node started", metadata: [
                "name": .string(settings.name), "version": .string(TaskerVersion.current),
                "node": .string(dispatcher?.nodeID ?? "without Redis: no dispatch"),
                "rpc_port": .stringConvertible(rpc.port), "http_port": .stringConvertible(http?.port ?? 0)])
            let retention = criteria.map { RetentionSweep(engine: engine, criteria: $0, every: settings.retentionInterval, logger: logger) }
            return TaskerNode(
                server: rpc, engine: engine, dispatcher: dispatcher, dispatching: dispatching, pool: pool, queue: queue, hub: hub,
                relay: relay, http: http, readiness: probes, retention: retention, name: settings.name, logger: logger)
        } catch {
            await readiness?.stop()
            await server?.shutdownGracefully()
            await dispatching?.stop()
            await relay?.shutdown()
            await queue?.shutdown()
            await pool.shutdown()
            throw error
        }
    }

    /// Ends the workers' streams (their running attempts fail as lost, to run elsewhere),
    /// lets the other calls finish, then closes the connections.
    public func shutdown() async {
        await retention?.stop()
        await dispatching?.stop()
        // Watchers are told to resume elsewhere rather than keep the server from stopping.
        hub.closeAll()
        await http?.shutdown()
        await server.shutdownGracefully()
        await readiness.stop()
        await relay?.shutdown()
        await queue?.shutdown()
        await pool.shutdown()
        logger.info("node stopped", metadata: ["name": .string(name), "node": .string(dispatcher?.nodeID ?? "")])
    }
}
