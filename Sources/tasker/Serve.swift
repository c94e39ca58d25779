import Dispatch
import ArgumentParser
import Logging
import NIOCore
import NIOPosix
import TaskerEngine
import TaskerRPC
import TaskerServer
import TaskerStore

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve the Tasker RPC services.")

    @Option(help: "Port to listen on (env TASKER_PORT).")
    var port: Int = ProcessInfoLite.environment("TASKER_PORT").flatMap { Int($0) } ?? 7420

    @Option(help: "Address to bind.")
    var host: String = "127.0.0.1"

    @Option(name: .customLong("database-url"), help: "Postgres, e.g. postgres://user@host:5432/db (env TASKER_DATABASE_URL). Without it only the health service runs.")
    var databaseURLOption: String?

    @Option(help: "Postgres connections in the pool.")
    var databaseConnections: Int = 8

    @Option(name: .customLong("redis-url"), help: "Redis, e.g. redis://127.0.0.1:6379 (env TASKER_REDIS_URL). With it, workers connect here (tasker.v1.Workers).")
    var redisURLOption: String?

    var databaseURL: String? { databaseURLOption ?? ProcessInfoLite.environment("TASKER_DATABASE_URL") }
    var redisURL: String? { redisURLOption ?? ProcessInfoLite.environment("TASKER_REDIS_URL") }

    func run() async throws {
        var logger = Logger(label: "tasker")
        logger.logLevel = .info
        let signals = ShutdownSignals()
        guard let databaseURL else {
            logger.warning("no --database-url: serving the health service only")
            let server = try await RPCServer.start(configuration: .init(host: host, port: port), services: [], logger: logger)
            logger.info("tasker listening on \(host):\(server.port)")
            await signals.wait()
            logger.info("shutting down")
            await server.shutdownGracefully()
            return
        }
        if redisURL == nil { logger.warning("no --redis-url: tasks can be submitted and read, but no worker can connect to run them") }
        var settings = TaskerNode.Settings(databaseURL: databaseURL, redisURL: redisURL)
        settings.host = host
        settings.port = port
        settings.databaseConnections = databaseConnections
        let node = try await TaskerNode.start(settings, logger: logger)
        logger.info("tasker listening on \(host):\(node.server.port)")
        await signals.wait()
        logger.info("shutting down")
        await node.shutdown()
    }
}

/// Waits for SIGINT or SIGTERM.
final class ShutdownSignals: @unchecked Sendable {
    private let sources: [any DispatchSourceSignal]
    private let stream: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation

    init() {
        (stream, continuation) = AsyncStream.makeStream(of: Void.self)
        let continuation = continuation
        sources = [SIGINT, SIGTERM].map { signalNumber in
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { continuation.yield() }
            source.resume()
            return source
        }
    }

    func wait() async {
        for await _ in stream { return }
    }
}

#if canImport(Glibc)
import Glibc
#endif
