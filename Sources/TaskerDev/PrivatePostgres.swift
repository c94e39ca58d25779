import Foundation

/// A PostgreSQL server of our own: initdb into a fresh data folder, started on a free port,
/// stopped by its pid and the folder removed (unless it was given one to keep). Tests use it,
/// and `tasker dev`.
///
/// Postgres refuses to run as root; as root the server runs as the `postgres` user (runuser),
/// in a folder that user owns.
public final class PrivatePostgres: @unchecked Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public let port: Int
    public let dataDirectory: URL
    /// The folder of the server's programs (initdb, postgres, createdb, pg_isready).
    private let binaries: String
    private let root: URL
    private let process: ChildProcess
    private let ownsRoot: Bool

    /// `postgres://tasker@127.0.0.1:PORT/tasker`
    public var url: String { "postgres://tasker@127.0.0.1:\(port)/tasker" }

    /// Starts a server; `settings` are extra `-c name=value` options.
    public init(in folder: URL? = nil, port: Int? = nil, settings: [String: String] = [:]) throws {
        let binaries = try Self.binaryDirectory()
        self.binaries = binaries
        ownsRoot = folder == nil
        root = folder ?? FileManager.default.temporaryDirectory.appendingPathComponent("tasker-pg-\(UUID().uuidString)")
        dataDirectory = root.appendingPathComponent("data")
        let socketDirectory = root.appendingPathComponent("socket")
        try FileManager.default.createDirectory(at: socketDirectory, withIntermediateDirectories: true)
        let asRoot = getuid() == 0
        if asRoot {
            try Self.run("/bin/chown", ["-R", "postgres:postgres", root.path])
            guard (try? Self.run("/usr/bin/test", ["-w", root.path], asPostgres: true)) != nil else {
                throw Failure(description: "the postgres user cannot reach \(root.path): Postgres runs as that user "
                    + "when started as root, so every folder above it must let others in (chmod o+x), or choose a data folder elsewhere")
            }
        }

        if !FileManager.default.fileExists(atPath: dataDirectory.appendingPathComponent("PG_VERSION").path) {
            try Self.run(
                binaries + "/initdb",
                ["-D", dataDirectory.path, "-U", "tasker", "-A", "trust", "-E", "UTF8", "--no-sync", "--locale=C.UTF-8"],
                asPostgres: asRoot)
        }

        self.port = port ?? LocalPort.free()
        var arguments = [
            "-D", dataDirectory.path, "-p", String(self.port), "-k", socketDirectory.path,
            "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200",
        ]
        for (name, value) in settings.sorted(by: { $0.key < $1.key }) {
            arguments += ["-c", "\(name)=\(value)"]
        }
        let log = root.appendingPathComponent("postgres.log")
        if asRoot {
            process = try ChildProcess(
                executable: "/usr/sbin/runuser", arguments: ["-u", "postgres", "--", binaries + "/postgres"] + arguments, log: log.path)
        } else {
            process = try ChildProcess(executable: binaries + "/postgres", arguments: arguments, log: log.path)
        }
        try waitUntilAccepting(log: log)
        try Self.run(binaries + "/createdb", ["-h", "127.0.0.1", "-p", String(self.port), "-U", "tasker", "tasker"], tolerateFailure: true)
    }

    deinit {
        stop()
    }

    /// Stops the server (fast shutdown) and removes its folder if it made it.
    public func stop() {
        if process.isRunning {
            // The postmaster's own pid (runuser stands between when running as root): SIGINT is
            // a fast shutdown that does not wait for clients.
            let pidFile = dataDirectory.appendingPathComponent("postmaster.pid")
            let postmaster = (try? String(contentsOf: pidFile, encoding: .utf8))?
                .split(separator: "\n").first.flatMap { Int32($0) }
            kill(postmaster ?? process.pid, SIGINT)
            if !process.waitForExit(seconds: 30) {
                if let postmaster { kill(postmaster, SIGKILL) }
                process.stop(signal: SIGKILL, grace: 5)
            }
        }
        if ownsRoot { try? FileManager.default.removeItem(at: root) }
    }

    /// The server's process (runuser's, when running as root), while it runs.
    public var pid: Int32? { process.isRunning ? process.pid : nil }

    private func waitUntilAccepting(log: URL) throws {
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if !process.isRunning {
                let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
                throw Failure(description: "postgres exited at start:\n\(text)")
            }
            let connected = LocalPort.accepts(port)
            if connected, (try? Self.run(binaries + "/pg_isready", ["-h", "127.0.0.1", "-p", String(port), "-q"])) != nil {
                return
            }
            usleep(50_000)
        }
        throw Failure(description: "postgres did not accept connections on port \(port) within 30 s")
    }

    static func binaryDirectory() throws -> String {
        let base = "/usr/lib/postgresql"
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: base)) ?? []
        for version in versions.sorted(by: { (Int($0) ?? 0) > (Int($1) ?? 0) }) {
            let bin = "\(base)/\(version)/bin"
            if FileManager.default.isExecutableFile(atPath: bin + "/postgres") { return bin }
        }
        throw Failure(description: "no PostgreSQL server under \(base): install the postgresql package")
    }

    @discardableResult
    static func run(_ executable: String, _ arguments: [String], asPostgres: Bool = false, tolerateFailure: Bool = false) throws -> String {
        let process = Process()
        if asPostgres {
            process.executableURL = URL(fileURLWithPath: "/usr/sbin/runuser")
            process.arguments = ["-u", "postgres", "--", executable] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
        }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        if process.terminationStatus != 0, !tolerateFailure {
            throw Failure(description: "\(executable) \(arguments.joined(separator: " ")) failed:\n\(output)")
        }
        return output
    }
}

extension PrivatePostgres {
    nonisolated(unsafe) private static var sharedServer: PrivatePostgres?
    private static let sharedLock = NSLock()

    /// One server for the whole process, started on first use and stopped when the process
    /// exits: test suites take databases of their own in it and run side by side.
    public static func shared() throws -> PrivatePostgres {
        sharedLock.lock()
        defer { sharedLock.unlock() }
        if let server = sharedServer { return server }
        // Every test's nodes at once: several nodes each, a pool, readiness and listeners.
        let server = try PrivatePostgres(settings: ["max_connections": "600"])
        sharedServer = server
        atexit { PrivatePostgres.sharedServer?.stop() }
        return server
    }

    /// A new, empty database in this server; its URL.
    public func createDatabase() throws -> String {
        let name = "db_\(UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased())"
        try Self.run(binaries + "/createdb", ["-h", "127.0.0.1", "-p", String(port), "-U", "tasker", name])
        return "postgres://tasker@127.0.0.1:\(port)/\(name)"
    }
}
