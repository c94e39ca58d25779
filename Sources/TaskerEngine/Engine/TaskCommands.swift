import Foundation
import SwiftProtobuf
import TaskerProto
import TaskerStore

extension TaskEngine {
    /// Cancels a task that has not finished: every step still able to move goes CANCELLED.
    public func cancelTask(_ id: String, reason: String) async throws(EngineError) -> Tasker_V1_Task {
        let taskID = try Self.taskID(id)
        return try await transaction { connection, changes in
            let current = try Self.lockTask(taskID, connection)
            guard !TaskStatusRule.isFinished(current) else {
                throw EngineError.failedPrecondition("task \(taskID) has already finished (\(current))")
            }
            let cancelled = try connection.query(
                """
                UPDATE steps SET status = $2, completed_at = now()
                WHERE task_id = $1 AND status IN ($3, $4, $5, $6)
                RETURNING step_id::text AS step_id, name, attempts,
                    (SELECT status FROM steps old WHERE old.step_id = steps.step_id) AS previous
                """,
                [taskID, String(StepStatus.cancelled.rawValue), String(StepStatus.pending.rawValue),
                 String(StepStatus.enqueued.rawValue), String(StepStatus.inProgress.rawValue),
                 String(StepStatus.waitingForRetry.rawValue)])
            var history = TransitionLog(taskID: taskID, taskStatus: current)
            for row in cancelled {
                history.step(row["step_id"]!, row["name"] ?? "", .cancelled,
                             from: StepStatus(rawValue: row.int("previous") ?? 0) ?? .unspecified,
                             attempt: Int32(row.int("attempts") ?? 0), taskStatus: current)
            }
            try history.write(connection, into: changes)
            if !reason.isEmpty {
                try connection.query(
                    "INSERT INTO annotations (task_id, type, annotation) VALUES ($1, 'cancellation', jsonb_build_object('reason', $2::text))",
                    [taskID, reason])
            }
            try Self.setTaskStatus(taskID, .cancelled, connection, changes)
            return try Self.loadTask(taskID, connection)!
        }
    }

    /// Revives a step in ERROR: its attempts start again and the task is IN_PROGRESS again.
    public func retryStep(taskID id: String, stepName: String) async throws(EngineError) -> Tasker_V1_Task {
        try await manualStepChange(taskID: id, stepName: stepName, event: .retry, results: nil, reason: "")
    }

    /// Marks a step done by hand; the steps after it run as if it had completed.
    public func resolveStep(taskID id: String, stepName: String, results: Google_Protobuf_Struct, reason: String) async throws(EngineError) -> Tasker_V1_Task {
        try await manualStepChange(taskID: id, stepName: stepName, event: .resolve, results: try Rows.json(results), reason: reason)
    }

    private func manualStepChange(
        taskID id: String, stepName: String, event: StepStateMachine.Event, results: String?, reason: String
    ) async throws(EngineError) -> Tasker_V1_Task {
        let taskID = try Self.taskID(id)
        return try await transaction { connection, changes in
            let current = try Self.lockTask(taskID, connection)
            guard current != .cancelled else {
                throw EngineError.failedPrecondition("task \(taskID) was cancelled")
            }
            guard let row = try connection.query(
                "SELECT \(LockedStep.columns) FROM steps WHERE task_id = $1 AND name = $2", [taskID, stepName]).first
            else { throw EngineError.notFound("task \(taskID) has no step '\(stepName)'") }
            var step = LockedStep(row)
            let previous = step.machine.status
            do {
                try step.machine.apply(event)
            } catch {
                switch event {
                case .retry: throw EngineError.failedPrecondition("step '\(stepName)' is \(previous), not ERROR: only a failed step can be retried")
                default: throw EngineError.failedPrecondition("step '\(stepName)' has already finished (\(previous))")
                }
            }
            try connection.query(
                """
                UPDATE steps SET status = $2, attempts = $3, results = coalesce($4::jsonb, results),
                    next_attempt_at = NULL, completed_at = CASE WHEN $5 THEN now() ELSE NULL END
                WHERE step_id = $1 AND status = $6
                """,
                [step.stepID, String(step.machine.status.rawValue), String(step.machine.attempts), results,
                 step.machine.status == .resolvedManually ? "t" : "f", String(previous.rawValue)])
            var history = TransitionLog(taskID: taskID, taskStatus: current)
            history.step(step.stepID, stepName, step.machine.status, from: previous, attempt: step.machine.attempts,
                         results: results, taskStatus: current)
            try history.write(connection, into: changes)
            if !reason.isEmpty {
                try connection.query(
                    "INSERT INTO annotations (task_id, step_name, type, annotation) VALUES ($1, $2, 'resolution', jsonb_build_object('reason', $3::text))",
                    [taskID, stepName, reason])
            }
            if step.machine.satisfiesDependents { try Self.releaseDependents(of: step, connection) }
            // A task that had stopped on this step moves again.
            if TaskStatusRule.isFinished(current) { try Self.setTaskStatus(taskID, .inProgress, connection, changes) }
            try Self.enqueueReadySteps(taskID, connection, changes)
            try Self.settleTask(taskID, connection, changes)
            return try Self.loadTask(taskID, connection)!
        }
    }

    /// Locks a task row for this transaction; NOT_FOUND when there is none.
    static func lockTask(_ taskID: String, _ connection: PostgresConnection) throws -> TaskStatus {
        guard let row = try connection.query("SELECT status FROM tasks WHERE task_id = $1 FOR UPDATE", [taskID]).first else {
            throw EngineError.notFound("no task \(taskID)")
        }
        return TaskStatus(rawValue: row.int("status") ?? 0) ?? .unspecified
    }

    /// Tasks, newest first, filtered; the page token is the id of the last task of the page.
    public func listTasks(_ request: Tasker_V1_ListTasksRequest) async throws(EngineError) -> Tasker_V1_ListTasksResponse {
        let size = request.pageSize <= 0 ? 50 : min(Int(request.pageSize), 500)
        var after: String?
        if !request.pageToken.isEmpty {
            guard let id = UUID(uuidString: request.pageToken) else {
                throw .invalidArgument("page_token '\(request.pageToken)' is not one this server gave out")
            }
            after = id.uuidString.lowercased()
        }
        let cursor = after
        let status: String? = request.status == .unspecified ? nil : String(request.status.rawValue)
        let rows = try await read { connection in
            try connection.query(
                """
                SELECT \(Rows.taskColumns) FROM tasks
                WHERE ($1 = '' OR name = $1) AND ($2::smallint IS NULL OR status = $2::smallint)
                  AND ($3 = '' OR tags @> ARRAY[$3])
                  AND ($4::uuid IS NULL OR (created_at, task_id) < (SELECT created_at, task_id FROM tasks WHERE task_id = $4::uuid))
                ORDER BY created_at DESC, task_id DESC LIMIT $5
                """,
                [request.name, status, request.tag, cursor, String(size + 1)])
        }
        var response = Tasker_V1_ListTasksResponse()
        let page = rows.values.prefix(size).indices.map { Rows.task(rows[$0]) }
        response.tasks = page
        if rows.count > size, let last = page.last {
            response.nextPageToken = last.taskID
        }
        return response
    }
}
