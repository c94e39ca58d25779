import Foundation
import Logging
import TaskerDispatch
import TaskerEngine
import TaskerQueue
import TaskerRPC
import TaskerStore

/// One running node: the RPC server with the Tasker services on a Postgres, and, with a
/// Redis, the Workers service and this node's dispatcher.
public final class TaskerNode: Sendable {
    public let server: RPCServer
    public let engine: TaskEngine
    public let dispatcher: Dispatcher?
    private let pool: PostgresPool
    private let queue: StepQueue?

    public struct Settings: Sendable {
        public var host = "127.0.0.1"
        public var port = 7420
        public var databaseURL: String
        public var databaseConnections = 8
        public var redisURL: String?
        public var name = ProcessInfo.processInfo.hostName
        public var dispatch = DispatchConfiguration()

        public init(databaseURL: String, redisURL: String? = nil) {
            self.databaseURL = databaseURL
            self.redisURL = redisURL
        }
    }

    private init(server: RPCServer, engine: TaskEngine, dispatcher: Dispatcher?, pool: PostgresPool, queue: StepQueue?) {
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
        var services: [any RPCService] = [TaskerService(engine: engine), try TaskerService.reflection(withWorkers: redis != nil)]
        var queue: StepQueue?
        var dispatcher: Dispatcher?
        if let redis {
            let steps = StepQueue(url: redis, consumer: UUID().uuidString.lowercased())
            let node = Dispatcher(engine: engine, queue: steps, nodeName: settings.name, configuration: settings.dispatch)
            await node.start()
            services.append(WorkersService(dispatcher: node))
            queue = steps
            dispatcher = node
        }
        do {
            let server = try await RPCServer.start(
                configuration: .init(host: settings.host, port: settings.port), services: services, logger: logger)
            return TaskerNode(server: server, engine: engine, dispatcher: dispatcher, pool: pool, queue: queue)
        } catch {
            await dispatcher?.stop()
            await queue?.shutdown()
            await pool.shutdown()
            throw error
        }
    }

    /// Ends the workers' streams (their running attempts fail as lost, to run elsewhere),
    /// lets the other calls finish, then closes the connections.
    public func shutdown() async {
        await dispatcher?.stop()
        await server.shutdownGracefully()
        await queue?.shutdown()
        await pool.shutdown()
    }
}
