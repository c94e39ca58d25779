import Foundation
import SwiftProtobuf
import TaskerProto
import TaskerStore

extension TaskEngine {
    /// Cancels a task that has not finished: every step still able to move goes CANCELLED.
    public func cancelTask(_ id: String, reason: String) async throws(EngineError) -> Tasker_V1_Task {
        let taskID = try Self.taskID(id)
        try InputCheck.text(reason, "reason", limit: InputLimits.reasonBytes)
        return try await transaction { connection, changes in
            guard var task = try LockedTask.lock(taskID, connection) else { throw EngineError.notFound("no task \(taskID)") }
            guard !TaskStatusRule.isFinished(task.status) else {
                throw EngineError.failedPrecondition("task \(taskID) has already finished (\(task.status.contractName))")
            }
            for index in task.steps.indices {
                try? task.apply(.cancel, to: index)
            }
            if !reason.isEmpty {
                task.annotate(stepName: "", type: "cancellation", json: try Self.reasonJSON(reason))
            }
            task.setStatus(.cancelled)
            try changes.write(task, connection)
            return try Self.loadTask(taskID, connection)!
        }
    }

    /// Revives a step in ERROR: its attempts start again and the task is IN_PROGRESS again.
    public func retryStep(taskID id: String, stepName: String) async throws(EngineError) -> Tasker_V1_Task {
        try await manualStepChange(taskID: id, stepName: stepName, event: .retry, results: nil, reason: "")
    }

    /// Marks a step done by hand; the steps after it run as if it had completed.
    public func resolveStep(taskID id: String, stepName: String, results: Google_Protobuf_Struct, reason: String) async throws(EngineError) -> Tasker_V1_Task {
        try await manualStepChange(
            taskID: id, stepName: stepName, event: .resolve,
            results: try InputCheck.json(results, "results", limit: InputLimits.resultsBytes), reason: reason)
    }

    private func manualStepChange(
        taskID id: String, stepName: String, event: StepStateMachine.Event, results: String?, reason: String
    ) async throws(EngineError) -> Tasker_V1_Task {
        let taskID = try Self.taskID(id)
        try InputCheck.text(stepName, "step_name", limit: InputLimits.nameBytes)
        try InputCheck.text(reason, "reason", limit: InputLimits.reasonBytes)
        return try await transaction { connection, changes in
            guard var task = try LockedTask.lock(taskID, connection) else { throw EngineError.notFound("no task \(taskID)") }
            guard task.status != .cancelled else {
                throw EngineError.failedPrecondition("task \(taskID) was cancelled")
            }
            guard let index = task.index(named: stepName) else {
                throw EngineError.notFound("task \(taskID) has no step \(InputCheck.quoted(stepName))")
            }
            if let results {
                let total = task.storedBytes(withResults: results.utf8.count, of: index)
                guard total <= InputLimits.taskBytes else {
                    throw EngineError.invalidArgument(
                        "results of \(results.utf8.count) bytes would bring task \(taskID)'s stored JSON to \(total) bytes, over the limit of \(InputLimits.taskBytes)")
                }
            }
            let previous = task.steps[index].machine.status
            do {
                try task.apply(event, to: index, results: results)
            } catch {
                switch event {
                case .retry: throw EngineError.failedPrecondition("step \(InputCheck.quoted(stepName)) is \(previous.contractName), not ERROR: only a failed step can be retried")
                default: throw EngineError.failedPrecondition("step \(InputCheck.quoted(stepName)) has already finished (\(previous.contractName))")
                }
            }
            if !reason.isEmpty {
                guard try task.annotationCount(connection) < InputLimits.annotationsPerTask else {
                    throw EngineError.failedPrecondition("task \(taskID) has \(InputLimits.annotationsPerTask) annotations, the most it keeps; resolve without a reason")
                }
                task.annotate(stepName: stepName, type: "resolution", json: try Self.reasonJSON(reason))
            }
            // A task that had stopped on this step moves again.
            if TaskStatusRule.isFinished(task.status) { task.setStatus(.inProgress) }
            task.enqueueReady()
            task.settle()
            try changes.write(task, connection)
            return try Self.loadTask(taskID, connection)!
        }
    }

    static func reasonJSON(_ reason: String) throws -> String {
        try Rows.json(Google_Protobuf_Struct(fields: ["reason": .init(stringValue: reason)]))
    }

    /// Tasks, newest first, filtered; the page token is the id of the last task of the page.
    public func listTasks(_ request: Tasker_V1_ListTasksRequest) async throws(EngineError) -> Tasker_V1_ListTasksResponse {
        guard request.pageSize >= 0 else {
            throw .invalidArgument("page_size is \(request.pageSize); it must be 0 (the default, \(InputLimits.defaultPageSize)) or more")
        }
        let size = request.pageSize == 0 ? InputLimits.defaultPageSize : min(Int(request.pageSize), InputLimits.pageSize)
        try InputCheck.text(request.name, "name", limit: InputLimits.nameBytes)
        try InputCheck.text(request.tag, "tag", limit: InputLimits.nameBytes)
        if case .UNRECOGNIZED(let raw) = request.status { throw .invalidArgument("status \(raw) is not a TaskStatus") }
        var after: String?
        if !request.pageToken.isEmpty {
            guard let id = UUID(uuidString: request.pageToken) else {
                throw .invalidArgument("page_token \(InputCheck.quoted(request.pageToken)) is not one this server gave out")
            }
            after = id.uuidString.lowercased()
        }
        let cursor = after
        let status: String? = request.status == .unspecified ? nil : String(request.status.rawValue)
        let page = try await read { connection in
            try ListingPage.read(limit: size) { after, count in
                try connection.query(
                    """
                    SELECT \(Rows.taskColumns) FROM tasks
                    WHERE ($1 = '' OR name = $1) AND ($2::smallint IS NULL OR status = $2::smallint)
                      AND ($3 = '' OR tags @> ARRAY[$3])
                      AND ($4::uuid IS NULL OR (created_at, task_id) < (SELECT created_at, task_id FROM tasks WHERE task_id = $4::uuid))
                    ORDER BY created_at DESC, task_id DESC LIMIT $5
                    """,
                    [request.name, status, request.tag, after?["task_id"] ?? cursor, String(count)])
            }
        }
        var response = Tasker_V1_ListTasksResponse()
        response.tasks = try page.rows.map { row throws(EngineError) in try Rows.task(row) }
        if page.more, let last = response.tasks.last {
            response.nextPageToken = last.taskID
        }
        return response
    }
}
