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

        let outcome = try await transaction { connection -> (Tasker_V1_Task, Bool) in
            // The whole new task is known here: its steps' first statuses (bypassed ones
            // SKIPPED, those with nothing left to wait for ENQUEUED) and its history.
            var stepValues: [String] = []
            var parameters: [String?] = []
            var history = TransitionLog(taskID: taskID, taskStatus: .pending)
            history.task(.pending, from: .unspecified)
            var enqueued: [(String, String)] = []
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
            for (position, step) in template.steps.enumerated() {
                let unmet = step.dependsOn.filter { !bypassed.contains($0) }.count
                let status: StepStatus = bypassed.contains(step.name) ? .skipped : unmet == 0 ? .enqueued : .pending
                let stepID = stepIDs[step.name]!
                if status == .skipped { history.step(stepID, step.name, .skipped, from: .pending, taskStatus: .pending) }
                if status == .enqueued { enqueued.append((stepID, step.name)) }
                let fields: [String?] = [
                    stepID, taskID, step.name, step.handler, String(position), String(status.rawValue),
                    String(step.retryLimit), step.retryable ? "t" : "f", step.skippable ? "t" : "f", String(step.timeoutSeconds),
                    String(step.backoff.baseSeconds), String(step.backoff.maxSeconds), String(step.backoff.jitter), String(unmet),
                    Self.textArray(step.dependsOn),
                ]
                let base = parameters.count
                stepValues.append("(" + (1...fields.count).map { "$\(base + $0)" }.joined(separator: ", ") + ")")
                parameters += fields
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
            for (stepID, name) in enqueued { history.step(stepID, name, .enqueued, from: .pending, taskStatus: .pending) }

            let inserted = try connection.query(
                """
                INSERT INTO tasks (task_id, name, version, status, context, initiator, source_system, reason, tags,
                    idempotency_key, last_sequence)
                VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, ARRAY(SELECT json_array_elements_text($9::json)), $10, $11)
                ON CONFLICT (name, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
                RETURNING extract(epoch FROM created_at)::text AS created_at
                """,
                [taskID, template.name, template.version, String(TaskStatus.pending.rawValue), contextJSON,
                 request.initiator, request.sourceSystem, request.reason, Rows.json(request.tags), idempotencyKey,
                 String(history.entries.count)])
            guard let created = inserted.first else {
                let existing = try connection.query(
                    "SELECT task_id::text AS task_id FROM tasks WHERE name = $1 AND idempotency_key = $2",
                    [template.name, idempotencyKey])
                guard let existingID = existing.first?["task_id"], let task = try Self.loadTask(existingID, connection) else {
                    throw EngineError.internal("idempotency key \(idempotencyKey ?? "") conflicted but no task holds it")
                }
                return (task, false)
            }
            if let at = Rows.timestamp(created["created_at"]) {
                task.createdAt = at
                task.updatedAt = at
            }
            try connection.query(
                """
                INSERT INTO steps (step_id, task_id, name, handler, position, status, retry_limit, retryable, skippable,
                    timeout_seconds, backoff_base_seconds, backoff_max_seconds, backoff_jitter, unmet_dependencies, depends_on)
                VALUES \(stepValues.joined(separator: ", "))
                """, parameters)
            let edges = template.steps.flatMap { step in step.dependsOn.map { (stepIDs[$0]!, stepIDs[step.name]!) } }
            if !edges.isEmpty {
                try connection.query(
                    """
                    INSERT INTO step_edges (task_id, from_step, to_step)
                    SELECT $1, f::uuid, t::uuid FROM unnest($2::text[], $3::text[]) AS e(f, t)
                    """, [taskID, Self.textArray(edges.map(\.0)), Self.textArray(edges.map(\.1))])
            }
            try history.write(connection, firstSequence: 1)
            return (task, true)
        }
        return (task: outcome.0, created: outcome.1)
    }

    /// A Postgres text[] literal.
    static func textArray(_ values: [String]) -> String {
        "{" + values.map { "\"" + $0.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\"" }
            .joined(separator: ",") + "}"
    }
}
