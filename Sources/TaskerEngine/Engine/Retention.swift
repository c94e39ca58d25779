import Foundation
import TaskerMetrics
import TaskerProto
import TaskerStore

/// Which finished tasks retention deletes: those that finished more than `olderThan` seconds
/// ago, in one of `statuses` (each a finished one).
public struct PruneCriteria: Sendable, Equatable {
    public let olderThan: Double
    public let statuses: [TaskStatus]

    public static let finished: [TaskStatus] = [.complete, .error, .cancelled, .resolvedManually]

    public init(olderThan: Double, statuses: [TaskStatus] = PruneCriteria.finished) throws(EngineError) {
        guard olderThan.isFinite, olderThan > 0 else { throw .invalidArgument("the age of the tasks to prune is above 0 seconds") }
        guard !statuses.isEmpty, statuses.allSatisfy(TaskStatusRule.isFinished) else {
            throw .invalidArgument("only finished tasks are pruned: COMPLETE, ERROR, CANCELLED or RESOLVED_MANUALLY")
        }
        self.olderThan = olderThan
        self.statuses = statuses
    }

    var parameters: [String?] {
        [String(olderThan), PostgresArrayLiteral.of(statuses.map { Int($0.rawValue) })]
    }
}

extension TaskEngine {
    /// Taken by the transaction deleting a batch: one node prunes at a time.
    static let pruneLockKey = 7_420_000_002

    /// How many tasks `prune` would delete now.
    public func countPrunable(_ criteria: PruneCriteria) async throws(EngineError) -> Int {
        let rows = try await read { connection in
            try connection.query(
                """
                SELECT count(*) AS count FROM tasks
                WHERE completed_at < now() - make_interval(secs => $1::float8) AND status = ANY($2::smallint[])
                """, criteria.parameters)
        }
        return rows.first?.int("count") ?? 0
    }

    /// Deletes the tasks `criteria` picks, each with its steps, edges, history and annotations,
    /// oldest first, `batch` tasks a transaction. It works at most `share` of the time (after a
    /// batch that took t, it rests t × (1/share − 1)), so that the running work keeps its pace:
    /// unpaced, deleting took 40% of a 2-core node's steps/s. A task being changed (a step
    /// retried: it is no longer finished) is passed over. Returns how many were deleted; 0 at
    /// once while another node prunes. Cancelled, it stops after the batch underway.
    @discardableResult
    public func prune(_ criteria: PruneCriteria, batch: Int = 200, share: Double = 0.25) async throws(EngineError) -> Int {
        var total = 0
        let rest = 1 / min(max(share, 0.01), 1) - 1
        while true {
            let began = ContinuousClock.now
            let deleted = try await transaction(flushCommit: false) { connection, _ -> Int? in
                guard try connection.query("SELECT pg_try_advisory_xact_lock($1) AS locked", [String(Self.pruneLockKey)]).first?.bool("locked") == true
                else { return nil }
                // Locked rows are skipped (a transaction is changing that task); the DELETE checks
                // again that each is still finished and old, as its row stands when deleted. Its
                // steps, edges and history have no foreign keys (0003): they go by name here;
                // annotations go by their cascade.
                let rows = try connection.query(
                    """
                    WITH doomed AS (
                        SELECT task_id FROM tasks
                        WHERE completed_at < now() - make_interval(secs => $1::float8) AND status = ANY($2::smallint[])
                        ORDER BY completed_at LIMIT $3 FOR UPDATE SKIP LOCKED),
                    gone AS (
                        DELETE FROM tasks t USING doomed d
                        WHERE t.task_id = d.task_id AND t.completed_at < now() - make_interval(secs => $1::float8)
                            AND t.status = ANY($2::smallint[])
                        RETURNING t.task_id),
                    gone_steps AS (DELETE FROM steps s USING gone g WHERE s.task_id = g.task_id RETURNING s.step_id),
                    gone_edges AS (DELETE FROM step_edges e USING gone_steps s WHERE e.from_step = s.step_id),
                    gone_history AS (DELETE FROM step_transitions h USING gone g WHERE h.task_id = g.task_id)
                    SELECT count(*) AS count FROM gone
                    """, criteria.parameters + [String(batch)])
                return rows.first?.int("count") ?? 0
            }
            guard let deleted else { return total }
            total += deleted
            if deleted > 0 { TaskerMetric.tasksPruned().increment(by: deleted) }
            guard deleted == batch, !Task.isCancelled else { return total }
            try? await Task.sleep(for: max((ContinuousClock.now - began) * rest, .milliseconds(5)))
        }
    }
}
