import Foundation
import SwiftProtobuf
import TaskerProto
import TaskerStore

extension TaskEngine {
    /// Creates a task with all its steps and edges in one transaction. Steps with nothing to
    /// wait for are ENQUEUED at once; bypassed steps start SKIPPED.
    public func submitTask(_ request: Tasker_V1_SubmitTaskRequest) async throws(EngineError) -> (task: Tasker_V1_Task, created: Bool) {
        guard !request.name.isEmpty else { throw .invalidArgument("name (the template to run) is empty") }
        let validated = try await template(name: request.name, version: request.version)
        let template = validated.template

        if let schema = validated.schema {
            let violations = schema.violations(of: JSONValue(request.context))
            if !violations.isEmpty {
                throw .invalidArgument("context does not match the schema of \(template.name) \(template.version): "
                    + violations.map(\.description).joined(separator: "; "))
            }
        }
        let stepsByName = Dictionary(uniqueKeysWithValues: template.steps.map { ($0.name, $0) })
        for name in request.bypassSteps {
            guard let step = stepsByName[name] else {
                throw .invalidArgument("bypass_steps names '\(name)', which is not a step of \(template.name) \(template.version)")
            }
            guard step.skippable else { throw .invalidArgument("step '\(name)' is not skippable, so it cannot be bypassed") }
        }

        let contextJSON = try Rows.json(request.context)
        let bypassed = Set(request.bypassSteps)
        let taskID = UUID().uuidString.lowercased()
        let stepIDs = Dictionary(uniqueKeysWithValues: template.steps.map { ($0.name, UUID().uuidString.lowercased()) })
        let idempotencyKey: String? = request.idempotencyKey.isEmpty ? nil : request.idempotencyKey

        // The whole new task is known here: its steps' first statuses (bypassed ones SKIPPED,
        // those with nothing left to wait for ENQUEUED) and its history. It is written by one
        // statement, so one round trip and one commit.
        var task = Tasker_V1_Task()
        task.taskID = taskID
        task.name = template.name
        task.version = template.version
        task.status = .pending
        task.context = request.context
        task.initiator = request.initiator
        task.sourceSystem = request.sourceSystem
        task.reason = request.reason
        task.tags = request.tags
        var rows: [NewStepRow] = []
        var history: [NewTransitionRow] = [NewTransitionRow(sequence: 1, step_id: nil, step_name: "", status: 0, previous_status: 0, task_status: TaskStatus.pending.rawValue)]
        var enqueued: [NewTransitionRow] = []
        for (position, step) in template.steps.enumerated() {
            let unmet = step.dependsOn.filter { !bypassed.contains($0) }.count
            let status: StepStatus = bypassed.contains(step.name) ? .skipped : unmet == 0 ? .enqueued : .pending
            let stepID = stepIDs[step.name]!
            let transition = NewTransitionRow(
                sequence: 0, step_id: stepID, step_name: step.name, status: status.rawValue,
                previous_status: StepStatus.pending.rawValue, task_status: TaskStatus.pending.rawValue)
            if status == .skipped { history.append(transition) }
            if status == .enqueued { enqueued.append(transition) }
            rows.append(NewStepRow(
                step_id: stepID, name: step.name, handler: step.handler, position: position, status: status.rawValue,
                retry_limit: step.retryLimit, retryable: step.retryable, skippable: step.skippable,
                timeout_seconds: step.timeoutSeconds, backoff_base_seconds: step.backoff.baseSeconds,
                backoff_max_seconds: step.backoff.maxSeconds, backoff_jitter: step.backoff.jitter,
                unmet_dependencies: unmet, depends_on: step.dependsOn))
            var workflowStep = Tasker_V1_WorkflowStep()
            workflowStep.stepID = stepID
            workflowStep.name = step.name
            workflowStep.handler = step.handler
            workflowStep.status = status
            workflowStep.dependsOn = step.dependsOn
            workflowStep.retryLimit = step.retryLimit
            workflowStep.retryable = step.retryable
            workflowStep.skippable = step.skippable
            task.steps.append(workflowStep)
        }
        history += enqueued
        for index in history.indices { history[index].sequence = index + 1 }
        let edges = template.steps.flatMap { step in
            step.dependsOn.map { NewEdgeRow(from_step: stepIDs[$0]!, to_step: stepIDs[step.name]!) }
        }
        let encoder = JSONEncoder()
        let parameters: [String?] = [
            taskID, template.name, template.version, String(TaskStatus.pending.rawValue), contextJSON,
            request.initiator, request.sourceSystem, request.reason, Rows.json(request.tags), idempotencyKey,
            String(history.count),
            String(decoding: try! encoder.encode(rows), as: UTF8.self),
            String(decoding: try! encoder.encode(edges), as: UTF8.self),
            String(decoding: try! encoder.encode(history), as: UTF8.self),
        ]
        let newTask = task
        let outcome = try await read { connection -> (Tasker_V1_Task, Bool) in
            let written = try connection.query(Self.insertTaskStatement, parameters)
            if let created = written.first {
                var task = newTask
                if let at = Rows.timestamp(created["created_at"]) {
                    task.createdAt = at
                    task.updatedAt = at
                }
                return (task, true)
            }
            let existing = try connection.query(
                "SELECT task_id::text AS task_id FROM tasks WHERE name = $1 AND idempotency_key = $2",
                [template.name, idempotencyKey])
            guard let existingID = existing.first?["task_id"], let task = try Self.loadTask(existingID, connection) else {
                throw EngineError.internal("idempotency key \(idempotencyKey ?? "") conflicted but no task holds it")
            }
            return (task, false)
        }
        return (task: outcome.0, created: outcome.1)
    }

    /// A task, its steps, edges and first transitions in one statement; when the idempotency
    /// key is taken, nothing is written and no row comes back.
    static let insertTaskStatement = """
        WITH task AS (
            INSERT INTO tasks (task_id, name, version, status, context, initiator, source_system, reason, tags,
                idempotency_key, last_sequence)
            VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, ARRAY(SELECT json_array_elements_text($9::json)), $10, $11)
            ON CONFLICT (name, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
            RETURNING task_id, created_at),
        new_steps AS (
            INSERT INTO steps (step_id, task_id, name, handler, position, status, retry_limit, retryable, skippable,
                timeout_seconds, backoff_base_seconds, backoff_max_seconds, backoff_jitter, unmet_dependencies, depends_on)
            SELECT x.step_id, task.task_id, x.name, x.handler, x.position, x.status, x.retry_limit, x.retryable, x.skippable,
                x.timeout_seconds, x.backoff_base_seconds, x.backoff_max_seconds, x.backoff_jitter, x.unmet_dependencies,
                ARRAY(SELECT json_array_elements_text(x.depends_on))
            FROM task, json_to_recordset($12::json) AS x(step_id uuid, name text, handler text, position smallint,
                status smallint, retry_limit integer, retryable boolean, skippable boolean, timeout_seconds integer,
                backoff_base_seconds float8, backoff_max_seconds float8, backoff_jitter float8, unmet_dependencies integer,
                depends_on json)),
        new_edges AS (
            INSERT INTO step_edges (task_id, from_step, to_step)
            SELECT task.task_id, x.from_step, x.to_step FROM task, json_to_recordset($13::json) AS x(from_step uuid, to_step uuid)),
        history AS (
            INSERT INTO step_transitions (task_id, sequence, step_id, step_name, status, previous_status, task_status)
            SELECT task.task_id, x.sequence, x.step_id, x.step_name, x.status, x.previous_status, x.task_status
            FROM task, json_to_recordset($14::json) AS x(sequence bigint, step_id uuid, step_name text, status smallint,
                previous_status smallint, task_status smallint))
        SELECT extract(epoch FROM created_at)::text AS created_at FROM task
        """
}

/// The rows SubmitTask writes, as JSON for json_to_recordset (snake_case: the column names).
struct NewStepRow: Encodable {
    let step_id: String
    let name: String
    let handler: String
    let position: Int
    let status: Int
    let retry_limit: Int32
    let retryable: Bool
    let skippable: Bool
    let timeout_seconds: Int32
    let backoff_base_seconds: Double
    let backoff_max_seconds: Double
    let backoff_jitter: Double
    let unmet_dependencies: Int
    let depends_on: [String]
}

struct NewEdgeRow: Encodable {
    let from_step: String
    let to_step: String
}

struct NewTransitionRow: Encodable {
    var sequence: Int
    let step_id: String?
    let step_name: String
    let status: Int
    let previous_status: Int
    let task_status: Int
}
