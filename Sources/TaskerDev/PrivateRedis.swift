import Foundation

/// A Redis server of our own: started on a free port with a working folder of its own and
/// nothing persisted, stopped by its pid and the folder removed. Tests use it, and `tasker dev`.
public final class PrivateRedis: @unchecked Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public let port: Int
    private let root: URL
    private let executable: String
    private var process: ChildProcess?

    /// `redis://127.0.0.1:PORT`
    public var url: String { "redis://127.0.0.1:\(port)" }

    /// Starts a server on `port`, or on a free port (another, should a process take the one
    /// chosen before the server binds it).
    public convenience init(port: Int? = nil) throws {
        var attempt = 0
        while true {
            do {
                try self.init(exactly: port ?? LocalPort.free())
                return
            } catch let failure as Failure where port == nil && attempt < 4 && failure.description.contains("exited at start") {
                attempt += 1
            }
        }
    }

    private init(exactly port: Int) throws {
        guard let executable = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
            .first(where: { FileManager.default.isExecutableFile(atPath: $0) })
        else { throw Failure(description: "no redis-server: install the redis-server package") }
        self.executable = executable
        self.port = port
        root = FileManager.default.temporaryDirectory.appendingPathComponent("tasker-redis-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        try start()
    }

    deinit {
        close()
    }

    public var pid: Int32? { process.flatMap { $0.isRunning ? $0.pid : nil } }

    /// Starts the server (again, after `stop`) on the same port.
    public func start() throws {
        guard pid == nil else { return }
        let log = root.appendingPathComponent("redis.log").path
        let process = try ChildProcess(executable: executable, arguments: [
            "--port", String(port), "--bind", "127.0.0.1", "--dir", root.path, "--save", "", "--appendonly", "no",
            "--daemonize", "no", "--logfile", log,
        ])
        self.process = process
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            if !process.isRunning {
                let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                throw Failure(description: "redis-server exited at start:\n\(text)")
            }
            if LocalPort.accepts(port) { return }
            usleep(20_000)
        }
        stop()
        throw Failure(description: "redis-server did not accept connections on port \(port) within 15 s")
    }

    /// Stops the server by its pid (SIGTERM, then SIGKILL after 10 s).
    public func stop() {
        process?.stop()
        process = nil
    }

    /// Stops the server for good and removes its folder: for an owner that is never released,
    /// such as a program's global, whose deinit never runs.
    public func close() {
        stop()
        try? FileManager.default.removeItem(at: root)
    }
}
