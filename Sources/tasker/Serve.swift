import Dispatch
import ArgumentParser
import Logging
import NIOCore
import NIOPosix
import TaskerRPC

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve the Tasker RPC services.")

    @Option(help: "Port to listen on (env TASKER_PORT).")
    var port: Int = ProcessInfoLite.environment("TASKER_PORT").flatMap { Int($0) } ?? 7420

    @Option(help: "Address to bind.")
    var host: String = "127.0.0.1"

    func run() async throws {
        var logger = Logger(label: "tasker")
        logger.logLevel = .info
        let server = try await RPCServer.start(
            configuration: .init(host: host, port: port), services: [], logger: logger)
        logger.info("tasker listening on \(host):\(server.port)")
        let signals = ShutdownSignals()
        await signals.wait()
        logger.info("shutting down")
        await server.shutdownGracefully()
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
