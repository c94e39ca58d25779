import Foundation
import Logging
import TaskerAuth
import TaskerDispatch
import TaskerEngine
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

    public struct Settings: Sendable {
        public var host = "127.0.0.1"
        public var port = 7420
        public var databaseURL: String
        public var databaseConnections = 8
        public var redisURL: String?
        public var name = ProcessInfo.processInfo.hostName
        public var dispatch = DispatchConfiguration()
        /// Updates a StreamStepUpdates watcher may have waiting before it is cut off.
        public var watcherBuffer = 4096
        /// How long a watcher of one task hears nothing before the stored history is read.
        public var watcherQuietInterval: Duration = .seconds(2)
        /// TLS on the RPC port; nil serves plaintext h2c.
        public var tls: ServerTLS?
        /// Every call but health's needs an API token whose role permits it.
        public var auth = false

        public init(databaseURL: String, redisURL: String? = nil) {
            self.databaseURL = databaseURL
            self.redisURL = redisURL
        }
    }

    /// Whether this node knows that another node has watchers, and so relays its updates.
    public var relaysUpdates: Bool { relay?.othersWatching ?? false }

    private init(
        server: RPCServer, engine: TaskEngine, dispatcher: Dispatcher?, pool: PostgresPool, queue: StepQueue?, hub: UpdateHub, relay: UpdateRelay?
    ) {
        self.hub = hub
        self.relay = relay
        self.server = server
        self.engine = engine
        self.dispatcher = dispatcher
        self.pool = pool
        self.queue = queue
    }

    /// Migrates the database, then serves.
    public static func start(_ settings: Settings, logger: Logger = Logger(label: "tasker")) async throws -> TaskerNode {
        let redis = try settings.redisURL.map { try RedisURL(parsing: $0) }
        let pool = PostgresPool(url: settings.databaseURL, size: settings.databaseConnections)
        do {
            let applied = try await Migrator().migrate(pool)
            if !applied.isEmpty { logger.info("applied schema migrations \(applied)") }
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
            TaskerService(engine: engine, hub: hub, quietInterval: settings.watcherQuietInterval),
            AdminService(store: tokens, gate: gate),
            try TaskerService.reflection(withWorkers: redis != nil),
        ]
        var queue: StepQueue?
        var dispatcher: Dispatcher?
        var relay: UpdateRelay?
        if let redis {
            let nodeID = UUID().uuidString.lowercased()
            let updates = UpdateRelay(url: redis, nodeID: nodeID, hub: hub, logger: logger)
            await updates.waitUntilListening()
            relay = updates
            let steps = StepQueue(url: redis, consumer: nodeID)
            let node = Dispatcher(engine: engine, queue: steps, nodeName: settings.name, configuration: settings.dispatch)
            await node.start()
            services.append(WorkersService(dispatcher: node, gate: gate))
            queue = steps
            dispatcher = node
        }
        do {
            var configuration = RPCServer.Configuration(host: settings.host, port: settings.port)
            configuration.security = settings.tls
            configuration.gate = gate
            let server = try await RPCServer.start(configuration: configuration, services: services, logger: logger)
            return TaskerNode(server: server, engine: engine, dispatcher: dispatcher, pool: pool, queue: queue, hub: hub, relay: relay)
        } catch {
            await dispatcher?.stop()
            await relay?.shutdown()
            await queue?.shutdown()
            await pool.shutdown()
            throw error
        }
    }

    /// Ends the workers' streams (their running attempts fail as lost, to run elsewhere),
    /// lets the other calls finish, then closes the connections.
    public func shutdown() async {
        await dispatcher?.stop()
        // Watchers are told to resume elsewhere rather than keep the server from stopping.
        hub.closeAll()
        await server.shutdownGracefully()
        await relay?.shutdown()
        await queue?.shutdown()
        await pool.shutdown()
    }
}
