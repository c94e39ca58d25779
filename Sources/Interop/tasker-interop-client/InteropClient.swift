import ArgumentParser
import TaskerInterop
import TaskerRPC

/// Runs gRPC interop cases with this transport's client against any TestService server.
@main
struct InteropClient: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tasker-interop-client", abstract: "Run gRPC interop test cases against a TestService server.")

    @Option(name: .customLong("server_host"), help: "Server host.")
    var serverHost: String = "127.0.0.1"

    @Option(name: .customLong("server_port"), help: "Server port.")
    var serverPort: Int

    @Option(name: .customLong("test_case"), help: "A case name, or all: \(InteropTestCase.allCases.map(\.rawValue).joined(separator: ", ")).")
    var testCase: String = "all"

    func run() async throws {
        let cases: [InteropTestCase]
        if testCase == "all" {
            cases = InteropTestCase.allCases
        } else if let single = InteropTestCase(rawValue: testCase) {
            cases = [single]
        } else {
            throw ValidationError("unknown test case '\(testCase)'")
        }
        let client = RPCClient(host: serverHost, port: serverPort)
        var failed = 0
        for testCase in cases {
            do {
                try await testCase.run(using: client)
                print("PASS \(testCase.rawValue)")
            } catch {
                failed += 1
                print("FAIL \(testCase.rawValue): \(error)")
            }
        }
        await client.close()
        if failed > 0 { throw ExitCode(1) }
    }
}
