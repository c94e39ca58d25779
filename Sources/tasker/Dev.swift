import ArgumentParser
import Foundation
import Logging
import TaskerDev
import ServiceLifecycle
import TaskerRPC
import TaskerServer

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
        // Until the group below traps them, a signal must not end this process and leave a
        // private Postgres or Redis behind it.
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        // In the order started; the group stops them in reverse, the server first.
        var parts: [ServiceGroupConfiguration.ServiceConfiguration] = []
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
                parts.append(.init(service: StartedPart {
                    logger.info("stopping Postgres")
                    started.stop()
                }))
                database = started.url
            }
            let queue: String
            if let redisURL {
                queue = redisURL
            } else {
                logger.info("starting Redis")
                let started = try PrivateRedis()
                parts.append(.init(service: StartedPart {
                    logger.info("stopping Redis")
                    started.stop()
                }))
                queue = started.url
            }
            logger.info("Postgres at \(database), Redis at \(queue)")
            let server = try ChildProcess(
                executable: Self.ownExecutable,
                arguments: ["serve", "--port", String(port), "--http-port", String(httpPort), "--database-url", database, "--redis-url", queue] + log.arguments,
                log: nil, inheritOutput: true)
            // A server that exits by itself stops the rest too, and this process exits 1.
            parts.append(.init(service: ServerProcess(process: server, logger: logger), failureTerminationBehavior: .gracefullyShutdownGroup))
            if httpPort != 0 {
                logger.notice("the dashboard: http://127.0.0.1:\(httpPort)/ (the JSON API under /api/v1)")
            }
        } catch {
            let started = ServiceGroup(configuration: .init(services: parts, logger: logger))
            await started.triggerGracefulShutdown()
            try? await started.run()
            throw error
        }
        let group = ServiceGroup(configuration: .init(services: parts, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch let exited as ServerProcess.Exited {
            logger.error("the server exited (status \(exited.status)); stopped the rest")
            throw ExitCode(1)
        }
    }

    /// `tasker serve` as a child process: it runs until graceful shutdown, which stops it with
    /// SIGTERM (killed if it has not stopped within 20 s); exiting by itself, it throws.
    struct ServerProcess: Service {
        struct Exited: Error {
            let status: Int32
        }

        let process: ChildProcess
        let logger: Logger

        func run() async throws {
            await cancelWhenGracefulShutdown { [process] in await process.exited() }
            guard process.isRunning else { throw Exited(status: process.exitCode ?? -1) }
            logger.info("stopping the server")
            process.stop(signal: SIGTERM, grace: 20)
        }
    }

    /// This program's path, to start its `serve` as the child.
    static var ownExecutable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }
}
