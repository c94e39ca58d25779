import ArgumentParser
import Logging
import TaskerRPC

@main
struct Tasker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tasker",
        abstract: "Runs multi-step tasks reliably.",
        subcommands: [Serve.self, Health.self])
}

/// The address of a server, `host:port`, from `--server` or `TASKER_SERVER`.
struct ServerAddress: ExpressibleByArgument {
    var host: String
    var port: Int

    init?(argument: String) {
        let parts = argument.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let port = Int(parts[1]), (1...65535).contains(port) else { return nil }
        host = parts[0].isEmpty ? "127.0.0.1" : String(parts[0])
        self.port = port
    }

    static var fromEnvironment: ServerAddress {
        ProcessInfoLite.environment("TASKER_SERVER").flatMap(ServerAddress.init(argument:))
            ?? ServerAddress(argument: "127.0.0.1:7420")!
    }
}

enum ProcessInfoLite {
    static func environment(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }
}

#if canImport(Glibc)
import Glibc
#endif
