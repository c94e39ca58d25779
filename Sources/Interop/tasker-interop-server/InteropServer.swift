import ArgumentParser
import TaskerInterop
import TaskerRPC

/// Serves grpc.testing.TestService for the gRPC interop cases.
@main
struct InteropServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tasker-interop-server", abstract: "Serve grpc.testing.TestService on this transport.")

    @Option(name: .customLong("port"), help: "Port to listen on.")
    var port: Int

    @Option(name: .customLong("host"), help: "Address to bind.")
    var host: String = "127.0.0.1"

    @Option(name: .customLong("keepalive_interval_ms"), help: "Send a keepalive PING after this long without input.")
    var keepaliveIntervalMilliseconds: Int64 = 60_000

    @Option(name: .customLong("keepalive_timeout_ms"), help: "Close a connection whose PING is unanswered this long.")
    var keepaliveTimeoutMilliseconds: Int64 = 20_000

    func run() async throws {
        var configuration = RPCServer.Configuration(host: host, port: port)
        configuration.keepaliveInterval = .milliseconds(keepaliveIntervalMilliseconds)
        configuration.keepaliveTimeout = .milliseconds(keepaliveTimeoutMilliseconds)
        let server = try await RPCServer.start(configuration: configuration, services: [TestService()])
        print("tasker-interop-server listening on \(host):\(server.port)")
        try await server.waitUntilClosed()
    }
}
