import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import ServiceLifecycle
import TaskerRPC

/// The HTTP port (Hummingbird, HTTP/1.1): one router that every `HTTPRoutes` adds to, on the
/// RPC port's host, secured as it is when it is.
public final class HTTPServer: Sendable {
    public struct Configuration: Sendable {
        public var host: String
        /// 0: a free port, read back from `port`.
        public var port: Int
        /// TLS (TaskerTLS's `ServerTLS` offering `http/1.1`); nil serves plain HTTP.
        public var security: (any ServerConnectionSecurity)?

        public init(host: String = "127.0.0.1", port: Int, security: (any ServerConnectionSecurity)? = nil) {
            self.host = host
            self.port = port
            self.security = security
        }
    }

    /// The port it listens on.
    public let port: Int
    private let group: ServiceGroup
    private let running: Task<Void, any Error>

    private init(port: Int, group: ServiceGroup, running: Task<Void, any Error>) {
        self.port = port
        self.group = group
        self.running = running
    }

    /// Listens; throws when it cannot (the address is taken, say).
    public static func start(configuration: Configuration, routes: [any HTTPRoutes], logger: Logger) async throws -> HTTPServer {
        let router = Router()
        for part in routes { part.add(to: router) }
        let security = configuration.security
        let server = HTTPServerBuilder { responder in
            let plain = HTTP1Channel(responder: responder, configuration: .init(idleTimeout: .seconds(75)))
            guard let security else { return plain }
            return SecuredChannel(base: plain, security: security)
        }
        // The first of these says whether it listens: its port, or why not.
        let (outcomes, outcome) = AsyncStream.makeStream(of: Result<Int, HTTPServerError>.self)
        let application = Application(
            router: router, server: server,
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: nil),
            onServerRunning: { channel in outcome.yield(.success(channel.localAddress?.port ?? configuration.port)) },
            logger: logger)
        let group = ServiceGroup(configuration: .init(services: [application], gracefulShutdownSignals: [], logger: logger))
        let running = Task {
            do {
                try await group.run()
                outcome.yield(.failure(HTTPServerError(host: configuration.host, port: configuration.port, reason: "it stopped at once")))
            } catch {
                outcome.yield(.failure(HTTPServerError(host: configuration.host, port: configuration.port, reason: "\(error)")))
                throw error
            }
        }
        for await first in outcomes {
            outcome.finish()
            switch first {
            case .success(let port): return HTTPServer(port: port, group: group, running: running)
            case .failure(let error): throw error
            }
        }
        throw HTTPServerError(host: configuration.host, port: configuration.port, reason: "it never started")
    }

    /// Stops listening and lets the requests in flight finish.
    public func shutdown() async {
        await group.triggerGracefulShutdown()
        _ = await running.result
    }
}

/// The HTTP port could not listen.
public struct HTTPServerError: Error, CustomStringConvertible {
    let host: String
    let port: Int
    let reason: String

    public var description: String {
        "the HTTP port cannot listen on \(host):\(port): \(reason) (choose another with --http-port, or 0 to turn it off)"
    }
}
