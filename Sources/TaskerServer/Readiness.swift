import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import TaskerQueue
import TaskerRPC
import TaskerStore

/// Whether this node's stores answer, probed every `interval` on connections of its own (a
/// busy pool is not a down database): what `/ready` reports and gRPC health follows, NOT_SERVING
/// while Postgres, Redis or the schema is not as this build needs it.
final class Readiness: Service, Sendable {
    private let pool: PostgresPool
    private let redis: RedisLane?
    private let schemaVersion: Int
    private let health: HealthService
    private let logger: Logger
    private let interval: Duration
    /// Each check and why it fails; nil while it passes.
    private let state = NIOLockedValueBox<[(check: String, problem: String?)]>([])
    /// How long a probe may take before its store counts as down.
    static let probeLimit: Duration = .seconds(2)

    init(databaseURL: String, redis: RedisURL?, health: HealthService, logger: Logger, interval: Duration = .seconds(1)) {
        pool = PostgresPool(url: databaseURL, size: 1)
        self.redis = redis.map { RedisLane(url: $0, timeoutSeconds: 2) }
        schemaVersion = Migrator().migrations.map(\.version).max() ?? 0
        self.health = health
        self.logger = logger
        self.interval = interval
    }

    var checks: [(check: String, problem: String?)] {
        state.withLockedValue { $0 }
    }

    /// Probes once: the node asks before it serves, so that its first answer is a real one.
    func probeNow() async {
        await probe()
    }

    /// Probes every interval until graceful shutdown, then closes its connections.
    func run() async {
        while (try? await cancelWhenGracefulShutdown({ try await Task.sleep(for: self.interval) })) != nil {
            await probe()
        }
        await pool.shutdown()
        await redis?.shutdown()
    }

    private func probe() async {
        let pool = self.pool
        let wanted = schemaVersion
        var checks: [(check: String, problem: String?)] = []
        let schema = await Self.within(Self.probeLimit) {
            try await pool.withConnection { connection in
                try connection.query("SELECT coalesce(max(version), 0) AS version FROM tasker_schema_migrations").first?.int("version") ?? 0
            }
        }
        switch schema {
        case .success(let version):
            checks.append(("postgres", nil))
            checks.append(("migrations", version >= wanted ? nil : "the schema is at version \(version); this build needs \(wanted)"))
        case .failure(let problem):
            checks.append(("postgres", problem.reason))
            checks.append(("migrations", "unknown while Postgres does not answer"))
        }
        if let redis {
            let answer = await Self.within(Self.probeLimit) { try await redis.command(["PING"]) }
            switch answer {
            case .success: checks.append(("redis", nil))
            case .failure(let problem): checks.append(("redis", problem.reason))
            }
        }
        let before = state.withLockedValue { state in
            defer { state = checks }
            return state
        }
        let down = checks.filter { $0.problem != nil }
        if before.isEmpty || before.contains(where: { $0.problem != nil }) != !down.isEmpty {
            health.setStatusOfAll(down.isEmpty ? .serving : .notServing)
        }
        for check in checks where before.first(where: { $0.check == check.check })?.problem != check.problem {
            if let problem = check.problem {
                logger.warning("a store this node needs is down", metadata: ["check": "\(check.check)", "problem": "\(problem)"])
            } else if !before.isEmpty {
                logger.info("a store this node needs is back", metadata: ["check": "\(check.check)"])
            }
        }
    }

    /// `body`'s value, or why it failed or took longer than `limit`. The probe runs apart, so
    /// that one stuck in a blocking call (a database that does not answer) holds no one up.
    private static func within<Value: Sendable>(
        _ limit: Duration, _ body: @escaping @Sendable () async throws -> Value
    ) async -> Result<Value, ProbeFailure> {
        let answer = NIOLockedValueBox<CheckedContinuation<Result<Value, ProbeFailure>, Never>?>(nil)
        // Resumed outside the lock: a resume takes the runtime's lock of the waiting task.
        @Sendable func settle(_ result: Result<Value, ProbeFailure>) {
            let waiting = answer.withLockedValue { continuation in
                defer { continuation = nil }
                return continuation
            }
            waiting?.resume(returning: result)
        }
        return await withCheckedContinuation { continuation in
            answer.withLockedValue { $0 = continuation }
            Task {
                do {
                    settle(.success(try await body()))
                } catch {
                    settle(.failure(ProbeFailure(reason: "\(error)")))
                }
            }
            Task {
                try? await Task.sleep(for: limit)
                settle(.failure(ProbeFailure(reason: "no answer within \(limit)")))
            }
        }
    }
}

struct ProbeFailure: Error, CustomStringConvertible {
    let reason: String
    var description: String { reason }
}
