import Foundation
import SwiftProtobuf
import TaskerProto
import TaskerStore

/// What an attempt came to, as a worker (or a test) reports it.
public enum StepOutcome: Sendable {
    case success(results: Google_Protobuf_Struct, annotations: [Tasker_V1_Annotation])
    case failure(message: String, retryable: Bool, backoffRequestSeconds: Int32)
}

/// An attempt a worker is to run, with what its assignment carries.
public struct StartedStep: Sendable {
    public let stepID: String
    public let taskID: String
    public let taskName: String
    public let stepName: String
    public let handler: String
    public let attempt: Int32
    public let context: Google_Protobuf_Struct
    /// The results of the steps it depends on, by step name.
    public let dependencyResults: [String: Google_Protobuf_Struct]
    /// 0: no limit.
    public let timeoutSeconds: Int32
}

/// A step of a task as the transition logic needs it, read under the task's lock.
struct LockedStep {
    let stepID: String
    let taskID: String
    let name: String
    var machine: StepStateMachine
    let backoff: Tasker_V1_BackoffPolicy

    init(_ row: PostgresRow) {
        stepID = row["step_id"]!
        taskID = row["task_id"]!
        name = row["name"]!
        machine = StepStateMachine(
            status: StepStatus(rawValue: row.int("status")!) ?? .unspecified,
            attempts: Int32(row.int("attempts")!), retryLimit: Int32(row.int("retry_limit")!),
            retryable: row.bool("retryable")!)
        var backoff = Tasker_V1_BackoffPolicy()
        backoff.baseSeconds = row.double("backoff_base_seconds")!
        backoff.maxSeconds = row.double("backoff_max_seconds")!
        backoff.jitter = row.double("backoff_jitter")!
        self.backoff = backoff
    }

    static let columns = """
        step_id::text AS step_id, task_id::text AS task_id, name, status, attempts, retry_limit, retryable,
        backoff_base_seconds, backoff_max_seconds, backoff_jitter
        """
}

extension TaskEngine {
    /// A worker takes an ENQUEUED step: a new attempt starts, owned by `node`, and the task is
    /// IN_PROGRESS. Returns what the worker needs to run it, or nil when the step was not
    /// ENQUEUED (taken already, or cancelled): nothing changes then.
    public func startStep(_ stepID: String, node: String? = nil) async throws(EngineError) -> StartedStep? {
        let id = try Self.stepID(stepID)
        return try await transaction { connection, changes -> StartedStep? in
            guard var step = try Self.lockStep(id, connection) else { return nil }
            let previous = step.machine.status
            guard (try? step.machine.apply(.start)) != nil else { return nil }
            let updated = try connection.query(
                """
                UPDATE steps SET status = $2, attempts = $3, last_attempted_at = now(), node_id = $6::uuid
                WHERE step_id = $1 AND status = $4 AND attempts = $5
                RETURNING handler, timeout_seconds, array_to_json(depends_on)::text AS depends_on
                """,
                [id, String(step.machine.status.rawValue), String(step.machine.attempts),
                 String(previous.rawValue), String(step.machine.attempts - 1), node])
            guard let row = updated.first else { return nil }
            var history = TransitionLog(taskID: step.taskID, taskStatus: try Self.taskStatus(step.taskID, connection))
            history.step(id, step.name, .inProgress, from: previous, attempt: step.machine.attempts, taskStatus: history.taskStatus)
            try history.write(connection, into: changes)
            try Self.settleTask(step.taskID, connection, changes)
            let task = try connection.query(
                "SELECT name, context::text AS context FROM tasks WHERE task_id = $1", [step.taskID]).first
            let dependencies = Rows.strings(row["depends_on"])
            var dependencyResults: [String: Google_Protobuf_Struct] = [:]
            if !dependencies.isEmpty {
                for result in try connection.query(
                    "SELECT name, results::text AS results FROM steps WHERE task_id = $1 AND name = ANY($2::text[])",
                    [step.taskID, PostgresArrayLiteral.of(dependencies)])
                {
                    dependencyResults[result["name"] ?? ""] = Rows.object(result["results"]) ?? Google_Protobuf_Struct()
                }
            }
            return StartedStep(
                stepID: id, taskID: step.taskID, taskName: task?["name"] ?? "", stepName: step.name,
                handler: row["handler"] ?? "", attempt: step.machine.attempts,
                context: Rows.object(task?["context"]) ?? Google_Protobuf_Struct(),
                dependencyResults: dependencyResults, timeoutSeconds: Int32(row.int("timeout_seconds") ?? 0))
        }
    }

    /// Records the outcome of attempt `attempt` of a step. A result for a step that is no longer
    /// IN_PROGRESS in that attempt (a duplicate, or a stale one after a timeout) changes nothing
    /// and returns false.
    @discardableResult
    public func finishStep(_ stepID: String, attempt: Int32, outcome: StepOutcome) async throws(EngineError) -> Bool {
        let id = try Self.stepID(stepID)
        var successJSON: String?
        var notesJSON: [(type: String, stepName: String, json: String)] = []
        if case .success(let results, let notes) = outcome {
            successJSON = try Rows.json(results)
            for note in notes {
                guard !note.type.isEmpty else { throw .invalidArgument("an annotation has no type") }
                notesJSON.append((note.type, note.stepName, try Rows.json(note.annotation)))
            }
        }
        let resultsJSON = successJSON
        let annotationsJSON = notesJSON
        return try await transaction { connection, changes -> Bool in
            guard var step = try Self.lockStep(id, connection), step.machine.status == .inProgress,
                  step.machine.attempts == attempt
            else { return false }
            let previous = step.machine.status
            var errorJSON: String?
            var nextAttempt: Double?
            switch outcome {
            case .success:
                try step.machine.apply(.succeed)
            case .failure(let message, let retryable, let requested):
                try step.machine.apply(.fail(retryable: retryable))
                errorJSON = try Rows.json(Google_Protobuf_Struct(fields: [
                    "message": .init(stringValue: message), "retryable": .init(boolValue: retryable),
                    "attempt": .init(numberValue: Double(attempt)), "at": .init(numberValue: Date().timeIntervalSince1970),
                ]))
                if step.machine.status == .waitingForRetry {
                    nextAttempt = Backoff.delay(attempt: attempt, policy: step.backoff, requestedSeconds: requested)
                }
            }
            let finished = step.machine.status == .complete || step.machine.status == .error
            let updated = try connection.query(
                """
                UPDATE steps SET status = $2,
                    results = coalesce($3::jsonb, results),
                    last_error = coalesce($4::jsonb, last_error),
                    next_attempt_at = CASE WHEN $5::float8 IS NULL THEN NULL ELSE now() + make_interval(secs => $5::float8) END,
                    completed_at = CASE WHEN $6 THEN now() ELSE completed_at END
                WHERE step_id = $1 AND status = $7 AND attempts = $8
                """,
                [id, String(step.machine.status.rawValue), resultsJSON, errorJSON, nextAttempt.map { String($0) },
                 finished ? "t" : "f", String(previous.rawValue), String(attempt)])
            guard updated.affectedRows == 1 else { return false }
            for (type, stepName, json) in annotationsJSON {
                try connection.query(
                    "INSERT INTO annotations (task_id, step_name, type, annotation) VALUES ($1, $2, $3, $4::jsonb)",
                    [step.taskID, stepName.isEmpty ? step.name : stepName, type, json])
            }
            var history = TransitionLog(taskID: step.taskID, taskStatus: try Self.taskStatus(step.taskID, connection))
            history.step(id, step.name, step.machine.status, from: previous, attempt: attempt,
                         results: resultsJSON, error: errorJSON, taskStatus: history.taskStatus,
                         retryAt: nextAttempt.map { Date().timeIntervalSince1970 + $0 })
            try history.write(connection, into: changes)
            if step.machine.satisfiesDependents { try Self.releaseDependents(of: step, connection) }
            try Self.enqueueReadySteps(step.taskID, connection, changes)
            try Self.settleTask(step.taskID, connection, changes)
            return true
        }
    }

    /// Retries that have fallen due, in every task, go back to the queue. Returns how many.
    @discardableResult
    public func enqueueDueRetries(limit: Int = 500) async throws(EngineError) -> Int {
        let tasks = try await read { connection in
            try connection.query(
                """
                SELECT DISTINCT task_id::text AS task_id FROM steps
                WHERE status = \(StepStatus.waitingForRetry.rawValue) AND next_attempt_at <= now() LIMIT $1
                """, [String(limit)]
            ).compactMap { $0["task_id"] }
        }
        var count = 0
        for taskID in tasks {
            count += try await transaction { connection, changes in try Self.enqueueReadySteps(taskID, connection, changes).count }
        }
        return count
    }

    // MARK: Shared steps of a transition

    static func stepID(_ text: String) throws(EngineError) -> String {
        guard let id = UUID(uuidString: text) else { throw .invalidArgument("step_id '\(text)' is not a UUID") }
        return id.uuidString.lowercased()
    }

    /// Locks the step's task (every transition of a task takes this lock first, so they happen
    /// one at a time and in order), then reads the step.
    static func lockStep(_ stepID: String, _ connection: PostgresConnection) throws -> LockedStep? {
        guard let taskID = try connection.query("SELECT task_id::text AS task_id FROM steps WHERE step_id = $1", [stepID]).first?["task_id"]
        else { return nil }
        try connection.query("SELECT 1 FROM tasks WHERE task_id = $1 FOR UPDATE", [taskID])
        return try connection.query("SELECT \(LockedStep.columns) FROM steps WHERE step_id = $1", [stepID]).first.map(LockedStep.init)
    }

    static func taskStatus(_ taskID: String, _ connection: PostgresConnection) throws -> TaskStatus {
        let row = try connection.query("SELECT status FROM tasks WHERE task_id = $1", [taskID]).first
        return TaskStatus(rawValue: row?.int("status") ?? 0) ?? .unspecified
    }

    /// One dependency fewer for every step that waits on this one. Found among the steps of its
    /// task by name, so the statement stays on the task's index whatever the planner knows.
    static func releaseDependents(of step: LockedStep, _ connection: PostgresConnection) throws {
        try connection.query(
            "UPDATE steps SET unmet_dependencies = unmet_dependencies - 1 WHERE task_id = $1 AND $2 = ANY(depends_on)",
            [step.taskID, step.name])
    }

    /// Sets the task's status from its steps' (TaskStatusRule) and records the change.
    static func settleTask(_ taskID: String, _ connection: PostgresConnection, _ changes: ChangeSet) throws {
        let current = try taskStatus(taskID, connection)
        guard current != .cancelled else { return }
        let steps = try connection.query("SELECT status FROM steps WHERE task_id = $1", [taskID])
            .compactMap { $0.int("status").flatMap(StepStatus.init(rawValue:)) }
        let next = TaskStatusRule.status(of: steps, cancelled: false)
        guard next != current else { return }
        try setTaskStatus(taskID, next, connection, changes)
    }

    static func setTaskStatus(_ taskID: String, _ status: TaskStatus, _ connection: PostgresConnection, _ changes: ChangeSet) throws {
        try connection.query(
            """
            UPDATE tasks SET status = $2, completed_at = CASE WHEN $3 THEN now() ELSE NULL END, updated_at = now()
            WHERE task_id = $1
            """, [taskID, String(status.rawValue), TaskStatusRule.isFinished(status) ? "t" : "f"])
        var history = TransitionLog(taskID: taskID, taskStatus: status)
        history.task(status)
        try history.write(connection, into: changes)
    }
}
