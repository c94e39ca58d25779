import ArgumentParser
import TaskerRPC

struct Health: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ask a server's grpc.health.v1.Health whether it is serving.",
        discussion: "Exit code 0 when SERVING, 1 when not, 2 when the server cannot be reached.")

    @OptionGroup var connection: ConnectionOptions

    @Option(help: "A service name; empty asks about the whole server.")
    var service: String = ""

    @Option(help: "Seconds to wait for the answer.")
    var timeout: Double = 5

    func run() async throws {
        let server = connection.server
        let client = RPCClient(host: server.host, port: server.port, configuration: connection.rpcConfiguration)
        var request = Grpc_Health_V1_HealthCheckRequest()
        request.service = service
        do {
            let response = try await client.unary(
                "/grpc.health.v1.Health/Check", request, as: Grpc_Health_V1_HealthCheckResponse.self,
                options: CallOptions(timeout: .nanoseconds(Int64(timeout * 1e9))))
            let name = service.isEmpty ? "server" : service
            print("\(name) at \(server.host):\(server.port): \(response.status)")
            await client.close()
            if response.status != .serving { throw ExitCode(1) }
        } catch let error as RPCError {
            await client.close()
            print("health check of \(server.host):\(server.port) failed: \(error)")
            throw ExitCode(error.code == .unavailable || error.code == .deadlineExceeded ? 2 : 1)
        }
    }
}
