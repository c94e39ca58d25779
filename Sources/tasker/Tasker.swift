import ArgumentParser
import Logging
import TaskerRPC
import TaskerServer

@main
struct Tasker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tasker",
        abstract: "Runs multi-step tasks reliably.",
        discussion: """
            Exit codes: 0 done (a watched task COMPLETE); 1 the task ended in ERROR or was \
            cancelled; 2 the server cannot be reached; 3 no such task or template; 4 the server \
            refused the request (invalid, or not possible in the task's state); 64 a bad command \
            line; 65 input that cannot be read (a malformed JSON context, a bad template file); 130 \
            interrupted by Ctrl-C.
            """,
        version: TaskerVersion.current,
        subcommands: [
            Serve.self, Dev.self, Submit.self, Get.self, List.self, Watch.self, Cancel.self, Retry.self, Resolve.self,
            Templates.self, Schedules.self, Workers.self, Queues.self, Tokens.self, Prune.self, Health.self,
        ])

    /// Output goes out a line at a time even into a pipe or a file (`tasker watch ID | tee log`):
    /// each line is there as soon as it is printed, and an interrupted command keeps them all.
    static func main() async {
        LineBufferedOutput.enable()
        do {
            var command = try parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
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

    var defaultValueDescription: String { "\(host):\(port)" }

    static var fromEnvironment: ServerAddress {
        TaskerEnvironment.value("TASKER_SERVER", ServerAddress.init(argument:))
            ?? ServerAddress(argument: "127.0.0.1:7420")!
    }
}

enum ProcessInfoLite {
    static func environment(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }
}

#if canImport(Glibc)
@preconcurrency import Glibc
#endif

/// Standard output flushed at every newline, whatever it is connected to.
enum LineBufferedOutput {
    static func enable() {
        // Set once, before any output, while no other thread writes.
        setvbuf(stdout, nil, _IOLBF, 0)
    }
}
