import Foundation
import TaskerProto
import TaskerStore

/// A step that has waited in the queue since `queuedAt` (Unix seconds).
public struct QueuedStepRecord: Sendable, Equatable {
    public let stepID: String
    public let handler: String
    public let queuedAt: Double
    /// Its task's, 1 (first) … 5 (last): which of the handler's queues holds it.
    public let priority: Int
    public let concurrency: StepConcurrency?
    public let rateLimits: StepRateLimits?

    /// From a row with step_id, handler, queued_at (epoch seconds), priority and the
    /// concurrency and rate limit columns.
    init?(_ row: PostgresRow) {
        guard let id = row["step_id"], let handler = row["handler"], let at = row.double("queued_at") else { return nil }
        stepID = id
        self.handler = handler
        queuedAt = at
        priority = row.int("priority") ?? 3
        concurrency = StepConcurrency(key: row["concurrency_key"], maxRunning: row.int("concurrency_max"))
        rateLimits = StepRateLimits(stored: row["rate_limits"])
    }
}

extension TaskEngine {
    /// A running attempt from a row with step_id and attempts.
    private static func runningAttempt(_ row: PostgresRow) -> (stepID: String, attempt: Int32)? {
        row["step_id"].map { ($0, Int32(row.int("attempts") ?? 0)) }
    }

    /// A node that stops: its row goes, so its running steps count as lost at once.
    public func forget(node: String) async throws(EngineError) {
        try await read { connection in
            try connection.query("DELETE FROM tasker_nodes WHERE node_id = $1::uuid", [node])
        }
    }

    /// Running attempts whose node has not been seen for `seconds` (or is gone) fail,
    /// retryably. Returns how many.
    @discardableResult
    public func failStepsOfLostNodes(unseenFor seconds: Double) async throws(EngineError) -> Int {
        let lost = try await read { connection in
            try connection.query(
                """
                SELECT s.step_id::text AS step_id, s.attempts FROM steps s
                WHERE s.status = \(StepStatus.inProgress.rawValue) AND s.node_id IS NOT NULL AND NOT EXISTS (
                    SELECT 1 FROM tasker_nodes n WHERE n.node_id = s.node_id AND n.seen_at > now() - make_interval(secs => $1::float8))
                LIMIT 1000
                """, [String(seconds)]
            ).compactMap(Self.runningAttempt)
        }
        var failed = 0
        for (stepID, attempt) in lost {
            let outcome = StepOutcome.lost(message: "the node running this step stopped")
            if try await finishStep(stepID, attempt: attempt, outcome: outcome) { failed += 1 }
        }
        return failed
    }

    /// Running attempts past their step's timeout fail, retryably. Returns the attempts failed,
    /// so that whoever holds them can be told to stop.
    public func failTimedOutSteps() async throws(EngineError) -> [(stepID: String, attempt: Int32, seconds: Int)] {
        let expired = try await read { connection in
            try connection.query(
                """
                SELECT step_id::text AS step_id, attempts, timeout_seconds FROM steps
                WHERE status = \(StepStatus.inProgress.rawValue) AND timeout_seconds > 0
                    AND last_attempted_at + make_interval(secs => timeout_seconds) < now()
                LIMIT 1000
                """
            ).compactMap { row in
                row["step_id"].map { ($0, Int32(row.int("attempts") ?? 0), row.int("timeout_seconds") ?? 0) }
            }
        }
        var failed: [(stepID: String, attempt: Int32, seconds: Int)] = []
        for (stepID, attempt, timeout) in expired where try await timeOut(stepID, attempt: attempt, after: timeout) {
            failed.append((stepID, attempt, timeout))
        }
        return failed
    }

    /// The attempt ran past its step's timeout: a retryable failure. False when the attempt
    /// had already finished.
    public func timeOut(_ stepID: String, attempt: Int32, after seconds: Int) async throws(EngineError) -> Bool {
        try await finishStep(
            stepID, attempt: attempt,
            outcome: .timedOut(seconds: seconds))
    }

    /// Attempts `node` started before `cutoff` (Unix seconds) that are still running.
    public func stepsInProgress(node: String, startedBefore cutoff: Double) async throws(EngineError) -> [(stepID: String, attempt: Int32)] {
        try await read { connection in
            try connection.query(
                """
                SELECT step_id::text AS step_id, attempts FROM steps
                WHERE node_id = $1::uuid AND status = \(StepStatus.inProgress.rawValue) AND last_attempted_at < to_timestamp($2::float8)
                """, [node, String(cutoff)]
            ).compactMap(Self.runningAttempt)
        }
    }

    /// Steps ENQUEUED since before `cutoff` (Unix seconds), oldest first.
    public func stepsQueued(before cutoff: Double, limit: Int = 1000) async throws(EngineError) -> [QueuedStepRecord] {
        try await read { connection in
            try connection.query(
                """
                SELECT s.step_id::text AS step_id, s.handler, extract(epoch FROM s.queued_at)::text AS queued_at, t.priority,
                    s.concurrency_key, s.concurrency_max, s.rate_limits
                FROM steps s JOIN tasks t ON t.task_id = s.task_id
                WHERE s.status = \(StepStatus.enqueued.rawValue) AND s.queued_at < to_timestamp($1::float8) ORDER BY s.queued_at LIMIT $2
                """, [String(cutoff), String(limit)]
            ).compactMap(QueuedStepRecord.init)
        }
    }

    /// Marks steps that are still ENQUEUED as queued again now (the queue lost them and they
    /// are being given to it again); returns those, with their handlers.
    public func requeue(_ stepIDs: [String]) async throws(EngineError) -> [QueuedStepRecord] {
        let stepIDs = stepIDs.compactMap { try? Self.stepID($0) }
        guard !stepIDs.isEmpty else { return [] }
        return try await read { connection in
            try connection.query(
                """
                UPDATE steps s SET queued_at = now() FROM tasks t
                WHERE s.step_id = ANY($1::uuid[]) AND s.status = $2 AND t.task_id = s.task_id
                RETURNING s.step_id::text AS step_id, s.handler, extract(epoch FROM s.queued_at)::text AS queued_at, t.priority,
                    s.concurrency_key, s.concurrency_max, s.rate_limits
                """, [PostgresArrayLiteral.of(stepIDs), String(StepStatus.enqueued.rawValue)]
            ).compactMap(QueuedStepRecord.init)
        }
    }

    /// Retries and delayed first steps whose time the queue reported: those whose time has
    /// come go to ENQUEUED (observers are told, and queue them). Returns how many.
    @discardableResult
    public func enqueueDueRetries(stepIDs: [String]) async throws(EngineError) -> Int {
        // Ids come back from Redis: anything that is not a step id is no step.
        let stepIDs = stepIDs.compactMap { try? Self.stepID($0) }
        guard !stepIDs.isEmpty else { return 0 }
        let tasks = try await read { connection in
            try connection.query(
                "SELECT DISTINCT task_id::text AS task_id FROM steps WHERE step_id = ANY($1::uuid[]) AND status IN ($2, $3)",
                [PostgresArrayLiteral.of(stepIDs), String(StepStatus.waitingForRetry.rawValue), String(StepStatus.pending.rawValue)]
            ).compactMap { $0["task_id"] }
        }
        return try await enqueueReady(inTasks: tasks)
    }

    /// Of these steps, those that may hold a place of their concurrency key: running, or
    /// ENQUEUED (about to start, or handed a place and on their way back to the queue).
    public func stepsHoldingPlaces(_ stepIDs: [String]) async throws(EngineError) -> Set<String> {
        let stepIDs = stepIDs.compactMap { try? Self.stepID($0) }
        guard !stepIDs.isEmpty else { return [] }
        return try await read { connection in
            Set(try connection.query(
                "SELECT step_id::text AS step_id FROM steps WHERE step_id = ANY($1::uuid[]) AND status IN ($2, $3)",
                [PostgresArrayLiteral.of(stepIDs), String(StepStatus.inProgress.rawValue), String(StepStatus.enqueued.rawValue)]
            ).compactMap { $0["step_id"] })
        }
    }

    /// Every running step with a concurrency limit, with its limit.
    public func runningLimitedSteps() async throws(EngineError) -> [(stepID: String, concurrency: StepConcurrency)] {
        try await read { connection in
            try connection.query(
                """
                SELECT step_id::text AS step_id, concurrency_key, concurrency_max FROM steps
                WHERE status = \(StepStatus.inProgress.rawValue) AND concurrency_key IS NOT NULL
                """
            ).compactMap { row in
                guard let id = row["step_id"], let limit = StepConcurrency(key: row["concurrency_key"], maxRunning: row.int("concurrency_max")) else { return nil }
                return (id, limit)
            }
        }
    }

    /// Tasks unfinished past their deadline go ERROR: every step that could still move is
    /// CANCELLED with why (observers call off the running attempts; their results are fenced).
    /// Returns how many.
    public func timeOutTasks(limit: Int = 200) async throws(EngineError) -> Int {
        let due = try await read { connection in
            try connection.query(
                """
                SELECT task_id::text AS task_id FROM tasks
                WHERE deadline_at <= now() AND completed_at IS NULL ORDER BY deadline_at LIMIT $1
                """, [String(limit)]
            ).compactMap { $0["task_id"] }
        }
        var count = 0
        for taskID in due {
            count += try await transaction { connection, changes -> Int in
                guard var task = try LockedTask.lock(taskID, connection), !TaskStatusRule.isFinished(task.status),
                      let row = try connection.query(
                        """
                        SELECT extract(epoch FROM deadline_at - greatest(created_at, coalesce(start_at, created_at)))::float8 AS seconds
                        FROM tasks WHERE task_id = $1 AND deadline_at <= now()
                        """, [taskID]).first
                else { return 0 }
                let message = "the task timed out after \(Int((row.double("seconds") ?? 0).rounded())) s"
                let error = Rows.stepErrorJSON(message, retryable: false, attempt: nil)
                for index in task.steps.indices {
                    try? task.apply(.cancel, to: index, error: error)
                }
                task.setStatus(.error)
                try changes.write(task, connection)
                return 1
            }
        }
        return count
    }

    /// Steps ENQUEUED longer than their schedule-to-start limit: an attempt that never
    /// started, failed retryably ("not started within N s"). Returns how many.
    public func failUnstartedSteps(limit: Int = 1000) async throws(EngineError) -> Int {
        let late = try await read { connection in
            try connection.query(
                """
                SELECT step_id::text AS step_id FROM steps
                WHERE status = \(StepStatus.enqueued.rawValue) AND schedule_to_start_seconds > 0
                    AND queued_at + make_interval(secs => schedule_to_start_seconds) < now()
                LIMIT $1
                """, [String(limit)]
            ).compactMap { $0["step_id"] }
        }
        guard !late.isEmpty else { return 0 }
        return try await transaction { connection, changes -> Int in
            var count = 0
            for var task in try LockedTask.lock(tasksOf: late, connection) {
                for stepID in late {
                    guard let index = task.index(of: stepID), task.steps[index].machine.status == .enqueued,
                          let limit = task.steps[index].scheduleToStart, limit > 0, (task.steps[index].queuedFor ?? 0) >= Double(limit)
                    else { continue }
                    var machine = task.steps[index].machine
                    guard (try? machine.apply(.expire)) != nil else { continue }
                    let attempt = machine.attempts
                    let delay = machine.status == .waitingForRetry
                        ? Backoff.delay(attempt: attempt, policy: task.steps[index].backoff, requestedSeconds: 0) : nil
                    let error = Rows.stepErrorJSON("not started within \(limit) s", retryable: true, attempt: attempt)
                    try? task.apply(.expire, to: index, error: error, retryIn: delay)
                    count += 1
                }
                task.settle()
                try changes.write(task, connection)
            }
            return count
        }
    }
}
