import TaskerProto
import TaskerStore

/// Task-level concurrency limits (TaskTemplate.concurrency), kept in Postgres: a task of a
/// limited template is written waiting, its first steps PENDING with no time to start, and
/// holds a place of its key from when it is given one until it finishes. Places are given in
/// one place only, `admitWaitingTasks`, which the submit, every finish of a limited task and
/// the sweeper call in their transactions: it takes the key's advisory lock (so that two
/// transactions never both see a free place), counts the tasks holding places, and makes the
/// first steps of the oldest waiting tasks due at once (or at their start_at).
extension TaskEngine {
    /// Gives free places of `key` to the tasks waiting for one, oldest first. Returns their
    /// first steps with when they start, for the queue's set of due times, and the tasks.
    static func admitWaitingTasks(key: String, _ connection: PostgresConnection) throws -> (steps: [DelayedStep], tasks: Set<String>) {
        // Its own statement: the count below must see every admission committed before the lock was held.
        try connection.query("SELECT pg_advisory_xact_lock(hashtextextended('tasker:task-concurrency:' || $1, 0))", [key])
        let rows = try connection.query(
            """
            WITH holding AS (
                SELECT count(*) AS n FROM tasks
                WHERE concurrency_key = $1 AND admitted_at IS NOT NULL AND status IN (\(TaskStatus.pending.rawValue), \(TaskStatus.inProgress.rawValue))),
            most AS (SELECT concurrency_max AS n FROM tasks WHERE concurrency_key = $1 AND admitted_at IS NULL ORDER BY task_id LIMIT 1),
            chosen AS (
                SELECT task_id, start_at FROM tasks WHERE concurrency_key = $1 AND admitted_at IS NULL ORDER BY task_id
                LIMIT (SELECT greatest(coalesce((SELECT n FROM most), 0) - holding.n, 0) FROM holding)
                FOR UPDATE SKIP LOCKED),
            admitted AS (
                UPDATE tasks t SET admitted_at = now() FROM chosen c WHERE t.task_id = c.task_id RETURNING t.task_id, c.start_at),
            first_steps AS (
                UPDATE steps s SET next_attempt_at = greatest(coalesce(a.start_at, now()), now()) FROM admitted a
                WHERE s.task_id = a.task_id AND s.status = \(StepStatus.pending.rawValue) AND s.unmet_dependencies = 0
                RETURNING s.step_id::text AS step_id, extract(epoch FROM s.next_attempt_at)::float8 AS at)
            SELECT step_id, at, NULL AS task_id FROM first_steps
            UNION ALL SELECT NULL, NULL, task_id::text FROM admitted
            """, [key])
        var steps: [DelayedStep] = []
        var tasks = Set<String>()
        for row in rows {
            if let stepID = row["step_id"], let at = row.double("at") { steps.append(DelayedStep(stepID: stepID, at: at)) }
            if let taskID = row["task_id"] { tasks.insert(taskID) }
        }
        return (steps, tasks)
    }

    /// Gives free places to waiting tasks of every key: the sweeper's, for a place freed by a
    /// transaction that could not give it. Returns how many tasks were given one.
    public func admitWaitingTasks() async throws(EngineError) -> Int {
        let keys = try await read { connection in
            try connection.query("SELECT DISTINCT concurrency_key FROM tasks WHERE admitted_at IS NULL AND concurrency_key IS NOT NULL LIMIT 1000")
                .compactMap { $0["concurrency_key"] }
        }
        var admitted = 0
        for key in keys {
            let (steps, tasks) = try await transaction { connection, _ in try Self.admitWaitingTasks(key: key, connection) }
            admitted += tasks.count
            await committed([], delayed: steps)
        }
        return admitted
    }
}
