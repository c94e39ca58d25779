import ArgumentParser
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import TaskerEngine
import TaskerRPC
import TaskerServer
import TaskerStore
import TaskerTLS
import UnixSignals

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve the Tasker RPC services.")

    @Option(help: "Port to listen on (env TASKER_PORT).")
    var port: Int = TaskerEnvironment.value("TASKER_PORT", TaskerEnvironment.port()) ?? 7420

    @Option(help: "Address to bind.")
    var host: String = "127.0.0.1"

    @Option(name: .customLong("http-port"), help: "The HTTP port: the dashboard, the JSON API, /live, /ready, /metrics (env TASKER_HTTP_PORT; 0 turns it off).")
    var httpPort: Int = TaskerEnvironment.value("TASKER_HTTP_PORT", TaskerEnvironment.port(zeroTurnsOff: true)) ?? 7421

    @Option(name: .customLong("database-url"), help: "Postgres, e.g. postgres://user@host:5432/db (env TASKER_DATABASE_URL). Without it only the health service runs.")
    var databaseURLOption: String?

    @Option(help: "Postgres connections in the pool.")
    var databaseConnections: Int = 8

    @Option(name: .customLong("redis-url"), help: "Redis, e.g. redis://127.0.0.1:6379 (env TASKER_REDIS_URL). With it, workers connect here (tasker.v1.Workers).")
    var redisURLOption: String?

    @Option(name: .customLong("tls-cert"), help: "Serve TLS with this certificate (PEM, then any intermediates) (env TASKER_TLS_CERT). SIGHUP reads it again.")
    var tlsCert: String? = ProcessInfoLite.environment("TASKER_TLS_CERT")

    @Option(name: .customLong("tls-key"), help: "The certificate's private key (PEM) (env TASKER_TLS_KEY).")
    var tlsKey: String? = ProcessInfoLite.environment("TASKER_TLS_KEY")

    @Option(name: .customLong("tls-client-ca"), help: "Require client certificates signed by a CA in this PEM file: mutual TLS (env TASKER_TLS_CLIENT_CA).")
    var tlsClientCA: String? = ProcessInfoLite.environment("TASKER_TLS_CLIENT_CA")

    @Flag(help: "Require an API token on every call but health's (env TASKER_AUTH=on); make the first with tasker tokens create --database-url.")
    var auth = TaskerEnvironment.flag("TASKER_AUTH")

    @Flag(help: "Listen on a non-loopback address without --auth, on purpose.")
    var insecure = false

    @Option(help: "Delete finished tasks this long after they finished, e.g. 30d (env TASKER_RETENTION; default: keep every one).")
    var retention: Lifetime? = TaskerEnvironment.value("TASKER_RETENTION", Lifetime.init(argument:))

    @Flag(name: .customLong("cron-seconds"), help: .hidden)
    var cronSeconds = false

    @OptionGroup var log: LogOptions

    var databaseURL: String? { databaseURLOption ?? ProcessInfoLite.environment("TASKER_DATABASE_URL") }
    var redisURL: String? { redisURLOption ?? ProcessInfoLite.environment("TASKER_REDIS_URL") }

    func validate() throws {
        try TaskerEnvironment.checkListenPorts()
        try TaskerEnvironment.checkFlag("TASKER_AUTH")
        try TaskerEnvironment.check("TASKER_RETENTION", expected: "a span such as 30d, 12h or 90m", Lifetime.init(argument:))
        guard (0...65535).contains(httpPort) else { throw ValidationError("--http-port is a port, 1 to 65535, or 0 for none; not \(httpPort)") }
        if !auth, !insecure, !Self.isLoopback(host) {
            throw ValidationError(
                "refusing to listen on \(host) without --auth: anyone who reaches it could run and read every task. "
                    + "Give --auth (and make a token with tasker tokens create), or --insecure to serve it open on purpose, or a loopback --host")
        }
        switch (tlsCert, tlsKey) {
        case (nil, nil):
            if tlsClientCA != nil { throw ValidationError("--tls-client-ca needs TLS: give --tls-cert and --tls-key too") }
        case (_?, nil): throw ValidationError("--tls-cert needs its private key: give --tls-key too")
        case (nil, _?): throw ValidationError("--tls-key needs its certificate: give --tls-cert too")
        case (_?, _?): break
        }
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    /// The TLS files read, or nil without TLS; a file that cannot be used is told as such.
    func serverTLS() throws -> ServerTLS? {
        guard let tlsCert, let tlsKey else { return nil }
        do {
            return try ServerTLS(certificatePath: tlsCert, keyPath: tlsKey, clientCAPath: tlsClientCA)
        } catch let error as TLSSetupError {
            throw ValidationError(error.description)
        }
    }

    func run() async throws {
        log.bootstrap()
        let logger = Logger(label: "tasker")
        let tls = try serverTLS()
        guard let databaseURL else {
            logger.warning("no --database-url: serving the health service only")
            var configuration = RPCServer.Configuration(host: host, port: port)
            configuration.security = tls
            let server = try await RPCServer.start(configuration: configuration, services: [], logger: logger)
            logger.info("tasker listening on \(host):\(server.port)\(tls == nil ? "" : " (TLS)")")
            try await Self.serve([StartedPart { await server.shutdownGracefully() }, TLSReloads([tls].compactMap { $0 }, logger: logger)], logger: logger)
            return
        }
        if redisURL == nil { logger.warning("no --redis-url: tasks can be submitted and read, but no worker can connect to run them") }
        let metrics = PrometheusMetrics.bootstrap()
        var settings = TaskerNode.Settings(databaseURL: databaseURL, redisURL: redisURL)
        settings.host = host
        settings.port = port
        settings.databaseConnections = databaseConnections
        settings.tls = tls
        settings.auth = auth
        settings.retention = retention?.seconds
        settings.cronWithSeconds = cronSeconds
        let httpTLS = try tls?.offering(["http/1.1"])
        if httpPort != 0 { settings.http = .init(port: httpPort, security: httpTLS, metrics: metrics.exposition) }
        let node = try await TaskerNode.assemble(settings, logger: logger)
        logger.info("tasker listening on \(host):\(node.server.port)\(tls == nil ? "" : " (TLS)")")
        if let http = node.http { logger.info("HTTP (the dashboard at /, the JSON API at /api/v1, /live, /ready, /metrics) on \(host):\(http.port)\(tls == nil ? "" : " (TLS)")") }
        try await Self.serve([node, TLSReloads([tls, httpTLS].compactMap { $0 }, logger: logger)], logger: logger)
    }

    /// Runs `services` until SIGINT or SIGTERM, then shuts them down gracefully, the last first.
    static func serve(_ services: [any Service], logger: Logger) async throws {
        let group = ServiceGroup(configuration: .init(
            services: services.map { .init(service: $0) }, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

/// Reads the TLS files again on SIGHUP, so that a renewed certificate is served without a
/// restart. A file that cannot be used is logged and the one in use stays.
struct TLSReloads: Service {
    let ports: [ServerTLS]
    let logger: Logger

    init(_ ports: [ServerTLS], logger: Logger) {
        self.ports = ports
        self.logger = logger
    }

    func run() async {
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            guard !ports.isEmpty else {
                logger.info("SIGHUP: not serving TLS, nothing to reload")
                continue
            }
            do {
                for tls in ports { try tls.reload() }
                logger.info("SIGHUP: TLS certificate reloaded; new connections use it")
            } catch {
                logger.error("SIGHUP: TLS certificate not reloaded, the one in use stays: \(error)")
            }
        }
    }
}
