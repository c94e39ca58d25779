import Foundation
import SwiftProtobuf
import TaskerProto

extension StepChange {
    /// The update a watcher is shown for this transition, stamped with when it was learned of.
    public func update(occurredAt: Double) throws(EngineError) -> Tasker_V1_StepUpdate {
        var update = Tasker_V1_StepUpdate()
        update.sequence = UInt64(sequence)
        update.taskID = taskID
        update.stepID = stepID ?? ""
        update.stepName = stepName
        update.status = status
        update.previousStatus = previous
        update.attempt = attempt
        if let results = try Rows.object(resultsJSON) { update.results = results }
        if let error = try Rows.stepError(errorJSON) { update.error = error }
        update.taskStatus = taskStatus
        update.occurredAt = Google_Protobuf_Timestamp(roundingTimeIntervalSince1970: occurredAt, rule: .toNearestOrAwayFromZero)
        return update
    }
}

extension TaskEngine {
    /// A task's status and the sequence of its newest transition; NOT_FOUND for no such task.
    public func progress(of id: String) async throws(EngineError) -> (status: TaskStatus, lastSequence: UInt64) {
        let taskID = try Self.taskID(id)
        let row = try await read { connection in
            try connection.query("SELECT status, last_sequence FROM tasks WHERE task_id = $1", [taskID]).first
        }
        guard let row, let status = row.int("status").flatMap(TaskStatus.init(rawValue:)), let last = row.int("last_sequence") else {
            throw .notFound("no task \(taskID)")
        }
        return (status, UInt64(max(last, 0)))
    }

    /// The stored transitions of a task after `after` and up to `through` (inclusive), oldest
    /// first, at most `limit` of them.
    public func history(of id: String, after: UInt64, through: UInt64 = UInt64(Int64.max), limit: Int = 500) async throws(EngineError) -> [Tasker_V1_StepUpdate] {
        let taskID = try Self.taskID(id)
        let bounds = [taskID, String(min(after, UInt64(Int64.max))), String(min(through, UInt64(Int64.max))), String(limit)]
        return try await read { connection in
            try connection.query(
                """
                SELECT sequence, step_id::text AS step_id, step_name, status, previous_status, attempt, results::text AS results,
                    error::text AS error, task_status, extract(epoch FROM occurred_at)::text AS occurred_at
                FROM step_transitions WHERE task_id = $1 AND sequence > $2 AND sequence <= $3 ORDER BY sequence LIMIT $4
                """, bounds
            ).map { row in
                var update = Tasker_V1_StepUpdate()
                update.sequence = UInt64(row.int("sequence") ?? 0)
                update.taskID = taskID
                update.stepID = row["step_id"] ?? ""
                update.stepName = row["step_name"] ?? ""
                update.status = StepStatus(rawValue: row.int("status") ?? 0) ?? .unspecified
                update.previousStatus = StepStatus(rawValue: row.int("previous_status") ?? 0) ?? .unspecified
                update.attempt = Int32(row.int("attempt") ?? 0)
                if let results = try Rows.object(row["results"]) { update.results = results }
                if let error = try Rows.stepError(row["error"]) { update.error = error }
                update.taskStatus = TaskStatus(rawValue: row.int("task_status") ?? 0) ?? .unspecified
                if let at = Rows.timestamp(row["occurred_at"]) { update.occurredAt = at }
                return update
            }
        }
    }
}
