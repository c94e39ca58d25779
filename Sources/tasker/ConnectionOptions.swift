import ArgumentParser
import TaskerClient
import TaskerRPC
import TaskerTLS

/// Where the server is and how to reach it: what every command that connects takes.
struct ConnectionOptions: ParsableArguments {
    @Option(help: "The server, host:port (env TASKER_SERVER).")
    var server: ServerAddress = .fromEnvironment

    @Flag(help: "Connect with TLS, trusting the system's CAs (env TASKER_TLS=on).")
    var tls = TaskerEnvironment.flag("TASKER_TLS")

    @Option(name: .customLong("tls-ca"), help: "Connect with TLS, trusting the CAs in this PEM file (env TASKER_TLS_CA).")
    var tlsCA: String? = ProcessInfoLite.environment("TASKER_TLS_CA")

    @Option(name: .customLong("tls-cert"), help: "A client certificate (PEM), for a server that requires one (env TASKER_TLS_CLIENT_CERT).")
    var tlsCert: String? = ProcessInfoLite.environment("TASKER_TLS_CLIENT_CERT")

    @Option(name: .customLong("tls-key"), help: "The client certificate's key (PEM) (env TASKER_TLS_CLIENT_KEY).")
    var tlsKey: String? = ProcessInfoLite.environment("TASKER_TLS_CLIENT_KEY")

    @Option(name: .customLong("tls-server-name"), help: "The name the server's certificate carries, when it is not the host of --server.")
    var tlsServerName: String?

    @Option(help: "An API token, for a server that runs with --auth (env TASKER_TOKEN).")
    var token: String? = ProcessInfoLite.environment("TASKER_TOKEN")

    func validate() throws {
        try TaskerEnvironment.check("TASKER_SERVER", expected: "host:port (e.g. 127.0.0.1:7420)", ServerAddress.init(argument:))
        try TaskerEnvironment.checkFlag("TASKER_TLS")
    }

    /// TLS when any TLS option is given.
    var clientTLS: ClientTLS? {
        guard tls || tlsCA != nil || tlsCert != nil || tlsKey != nil || tlsServerName != nil else { return nil }
        return ClientTLS(caPath: tlsCA, certificatePath: tlsCert, keyPath: tlsKey, serverName: tlsServerName)
    }

    var rpcConfiguration: RPCClient.Configuration {
        var configuration = RPCClient.Configuration()
        configuration.security = clientTLS
        if let token { configuration.metadata.add("authorization", "Bearer \(token)") }
        return configuration
    }

    var described: String { "\(server.host):\(server.port)" }

    /// Runs `body` with a client, turning what can go wrong into the `CommandFailure` that
    /// says what happened.
    func withClient<Result>(_ body: (TaskerClient) async throws -> Result) async throws -> Result {
        let client = TaskerClient(host: server.host, port: server.port, tls: clientTLS, token: token)
        do {
            let result = try await body(client)
            await client.close()
            return result
        } catch {
            await client.close()
            throw CommandFailure(error, server: described)
        }
    }
}
