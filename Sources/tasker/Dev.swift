import ArgumentParser
import Foundation
import Logging
import TaskerDev
import TaskerRPC

struct Dev: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A development server with a private Postgres and Redis: zero setup.",
        discussion: """
            Without --database-url, a Postgres of its own is started (its data kept under \
            <data>/postgres, so tasks outlive a restart; as root, when the postgres user cannot \
            reach that folder, under ~postgres/tasker-dev/<project>-<hash> instead, which it \
            says); without --redis-url, a Redis of its own. One tasker dev at a time uses a data \
            folder: a second says which pid has it. \
            Then `tasker serve` runs on them as a child process. Ctrl-C or SIGTERM stops the \
            server, then Redis, then Postgres; so does a crash of the server (exit code 1). \
            Nothing is left running.
            """)

    @Option(help: "Port to listen on (env TASKER_PORT).")
    var port: Int = TaskerEnvironment.value("TASKER_PORT", TaskerEnvironment.port()) ?? 7420

    @Option(name: .customLong("http-port"), help: "The server's HTTP port: the dashboard, the JSON API, /live, /ready, /metrics (env TASKER_HTTP_PORT; 0 turns it off).")
    var httpPort: Int = TaskerEnvironment.value("TASKER_HTTP_PORT", TaskerEnvironment.port(zeroTurnsOff: true)) ?? 7421

    @Option(help: "The folder for the private Postgres's data.")
    var data: String = ".tasker"

    @Option(help: "Use this Postgres instead of a private one.")
    var databaseURL: String?

    @Option(help: "Use this Redis instead of a private one.")
    var redisURL: String?

    @OptionGroup var log: LogOptions

    func validate() throws {
        try TaskerEnvironment.checkListenPorts()
    }

    func run() async throws {
        let folder = URL(fileURLWithPath: data, isDirectory: true).standardizedFileURL
        let lock: RunningLock?
        do {
            lock = databaseURL == nil ? try RunningLock(folder.appendingPathComponent("tasker-dev.pid")) : nil
        } catch let held as RunningLock.Held {
            FileHandle.standardError.write(Data(
                "tasker: tasker dev is \(held) on the data folder \(folder.path): stop it, or choose another --data\n".utf8))
            throw ExitCode(1)
        }
        defer { withExtendedLifetime(lock) {} }
        log.bootstrap()
        let logger = Logger(label: "tasker.dev")
        let signals = ShutdownSignals()
        var postgres: PrivatePostgres?
        var redis: PrivateRedis?
        var server: ChildProcess?
        // Stops what was started, newest first, whatever happens below.
        func stopAll() {
            server?.stop(signal: SIGTERM, grace: 20)
            if let redis {
                logger.info("stopping Redis")
                redis.stop()
            }
            if let postgres {
                logger.info("stopping Postgres")
                postgres.stop()
            }
        }
        do {
            let database: String
            if let databaseURL {
                database = databaseURL
            } else {
                let wanted = folder.appendingPathComponent("postgres")
                let place = PostgresDataFolder.reachable(for: wanted)
                if place != wanted {
                    logger.notice("the postgres user cannot reach \(wanted.path) (as root, Postgres runs as that user): its data is kept in \(place.path) instead")
                }
                logger.info("starting Postgres, data in \(place.path)")
                let started = try PrivatePostgres(in: place)
                postgres = started
                database = started.url
            }
            let queue: String
            if let redisURL {
                queue = redisURL
            } else {
                logger.info("starting Redis")
                let started = try PrivateRedis()
                redis = started
                queue = started.url
            }
            logger.info("Postgres at \(database), Redis at \(queue)")
            server = try ChildProcess(
                executable: Self.ownExecutable,
                arguments: ["serve", "--port", String(port), "--http-port", String(httpPort), "--database-url", database, "--redis-url", queue] + log.arguments,
                log: nil, inheritOutput: true)
            if httpPort != 0 {
                logger.notice("the dashboard: http://127.0.0.1:\(httpPort)/ (the JSON API under /api/v1)")
            }
        } catch {
            stopAll()
            throw error
        }
        let outcome = await Self.wait(for: server!, or: signals)
        switch outcome {
        case .signal:
            logger.info("stopping the server")
            stopAll()
        case .serverExited(let status):
            server = nil
            logger.error("the server exited (status \(status)); stopping")
            stopAll()
            throw ExitCode(1)
        }
    }

    enum Outcome {
        case signal
        case serverExited(Int32)
    }

    /// Until a signal asks to stop, or the server goes.
    static func wait(for server: ChildProcess, or signals: ShutdownSignals) async -> Outcome {
        await withTaskGroup(of: Outcome.self) { group in
            group.addTask {
                await signals.wait()
                return .signal
            }
            group.addTask {
                while server.isRunning, !Task.isCancelled { try? await Task.sleep(for: .milliseconds(100)) }
                return .serverExited(server.exitCode ?? -1)
            }
            let first = await group.next()!
            group.cancelAll()
            return first
        }
    }

    /// This program's path, to start its `serve` as the child.
    static var ownExecutable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }
}
