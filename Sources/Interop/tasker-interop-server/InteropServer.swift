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

    func run() async throws {
        let server = try await RPCServer.start(configuration: .init(host: host, port: port), services: [TestService()])
        print("tasker-interop-server listening on \(host):\(server.port)")
        try await server.waitUntilClosed()
    }
}
