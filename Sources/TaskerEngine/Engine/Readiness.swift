import TaskerProto
import TaskerStore

extension TaskEngine {
    /// Moves every ready step of a task to ENQUEUED: PENDING with all dependencies met, or
    /// WAITING_FOR_RETRY and due. A task that has finished enqueues nothing.
    @discardableResult
    static func enqueueReadySteps(_ taskID: String, _ connection: PostgresConnection, _ changes: ChangeSet) throws -> [String] {
        let task = try connection.query("SELECT status FROM tasks WHERE task_id = $1 FOR UPDATE", [taskID])
        guard let raw = task.first?.int("status"), let status = TaskStatus(rawValue: raw),
              !TaskStatusRule.isFinished(status)
        else { return [] }
        let ready = try connection.query(
            """
            UPDATE steps SET status = $2, queued_at = now()
            WHERE task_id = $1 AND ((status = $3 AND unmet_dependencies = 0) OR (status = $4 AND next_attempt_at <= now()))
            RETURNING step_id::text AS step_id, name, handler, attempts,
                (CASE WHEN attempts = 0 THEN $3 ELSE $4 END) AS previous
            """,
            [taskID, String(StepStatus.enqueued.rawValue), String(StepStatus.pending.rawValue),
             String(StepStatus.waitingForRetry.rawValue)])
        var history = TransitionLog(taskID: taskID, taskStatus: status)
        for row in ready {
            let previous = StepStatus(rawValue: row.int("previous") ?? 0) ?? .pending
            history.step(row["step_id"]!, row["name"] ?? "", .enqueued, from: previous,
                         attempt: Int32(row.int("attempts") ?? 0), taskStatus: status, handler: row["handler"])
        }
        try history.write(connection, into: changes)
        return ready.compactMap { $0["step_id"] }
    }
}
