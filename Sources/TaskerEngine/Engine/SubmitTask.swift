import Foundation
import SwiftProtobuf
import TaskerMetrics
import TaskerProto
import TaskerStore

extension TaskEngine {
    /// Creates a task with all its steps and edges in one transaction. Steps with nothing to
    /// wait for are ENQUEUED at once; bypassed steps start SKIPPED.
    public func submitTask(_ request: Tasker_V1_SubmitTaskRequest) async throws(EngineError) -> (task: Tasker_V1_Task, created: Bool) {
        let contextJSON = try Self.check(request)
        let known = try await template(name: request.name, version: request.version)
        try await validate(request, against: known.validated)

        let bypassed = Set(request.bypassSteps)
        var stored = known
        for _ in 0..<3 {
            let submission = try NewTask(stored.validated.template, request: request, bypassed: bypassed, columns: stored.columns)
            let newestGuard: String? = request.version.isEmpty ? String(stored.registration) : nil
            let parameters: [String?] = [
                submission.task.taskID, submission.task.name, submission.task.version, String(TaskStatus.pending.rawValue),
                contextJSON, request.initiator, request.sourceSystem, request.reason, PostgresArrayLiteral.of(request.tags),
                request.idempotencyKey.isEmpty ? nil : request.idempotencyKey, String(submission.history.count),
            ] + submission.stepColumns(stored.columns) + submission.edgeColumns + submission.historyColumns + [newestGuard]
                + [submission.task.hasStartAt ? Rows.postgresTime(submission.task.startAt) : nil, String(submission.task.priority),
                   submission.startAt == nil || submission.taskConcurrencyKey != nil ? nil : Rows.postgresTime(submission.task.startAt),
                   PostgresArrayLiteral.of(submission.concurrencyKeys), stored.columns.concurrencyMaxes,
                   String(stored.validated.template.timeoutSeconds), stored.columns.scheduleToStarts]
                + (stored.columns.hasRateLimits ? [PostgresArrayLiteral.of(submission.rateLimits.map { $0?.encoded })] : [])
            let statement = stored.columns.hasRateLimits ? Self.insertRateLimitedTaskStatement : Self.insertTaskStatement
            let taskLimit = stored.validated.template.concurrency.maxRunning
            let write: @Sendable (PostgresConnection) throws -> SubmitOutcome = { connection in
                let written = try connection.query(statement, parameters)
                guard written.first?.bool("newest") == true else { return .staleTemplate }
                if let createdAt = written.first?["created_at"] {
                    var task = submission.task
                    task.lastSequence = UInt64(submission.history.count)
                    if let at = Rows.timestamp(createdAt) {
                        task.createdAt = at
                        task.updatedAt = at
                    }
                    if let at = Rows.timestamp(written.first?["deadline_at"]) { task.deadlineAt = at }
                    guard let key = submission.taskConcurrencyKey else { return .written(task, created: true) }
                    // Written waiting: it starts when the key has a place for it, maybe at once.
                    try connection.query(
                        "UPDATE tasks SET concurrency_key = $2, concurrency_max = $3 WHERE task_id = $1", [task.taskID, key, String(taskLimit)])
                    let (steps, tasks) = try Self.admitWaitingTasks(key: key, connection)
                    task.admitted = tasks.contains(task.taskID)
                    return .written(task, created: true, admitted: steps)
                }
                // A repeat names the task it made; the same key with another context is a
                // mistake to say, not a task to return as if it were the one asked for. (jsonb
                // equality: key order and 7 against 7.0 make no difference.)
                let existing = try connection.query(
                    """
                    SELECT task_id::text AS task_id, context = $3::jsonb AS same_context FROM tasks
                    WHERE name = $1 AND idempotency_key = $2
                    """,
                    [submission.task.name, request.idempotencyKey, contextJSON])
                let vanished = EngineError.internal("idempotency key \(request.idempotencyKey) conflicted but no task holds it")
                guard let existingID = existing.first?["task_id"] else { throw vanished }
                guard existing.first?.bool("same_context") == true else {
                    throw EngineError.alreadyExists(
                        "idempotency key \(InputCheck.quoted(request.idempotencyKey)) already names task \(existingID) of \(submission.task.name), "
                            + "submitted with another context: use a new key for a new task, or the same context to get that one")
                }
                // Read only for a true repeat, which returns it.
                guard let task = try Self.loadTask(existingID, connection) else { throw vanished }
                return .written(task, created: false)
            }
            // A limited task's place is given in the transaction that writes it.
            let outcome = submission.taskConcurrencyKey == nil
                ? try await read(write) : try await transaction { connection, _ in try write(connection) }
            switch outcome {
            case .written(let task, let created, let admitted):
                if created {
                    TaskerMetric.tasksSubmitted(task.name).increment()
                    await committed(submission.changes, delayed: submission.delayed + admitted)
                }
                return (task, created)
            case .staleTemplate:
                stored = try await template(name: request.name, version: request.version, forgettingNewest: true)
                try await validate(request, against: stored.validated)
            }
        }
        throw .unavailable("template \(request.name) kept changing while the task was being submitted; submit it again")
    }

    /// Checks every field against InputLimits before the template is looked up; returns the
    /// context as it will be stored.
    static func check(_ request: Tasker_V1_SubmitTaskRequest) throws(EngineError) -> String {
        try InputCheck.text(request.name, "name", limit: InputLimits.nameBytes)
        guard !request.name.isEmpty else { throw .invalidArgument("name (the template to run) is empty") }
        try InputCheck.text(request.version, "version", limit: InputLimits.nameBytes)
        try InputCheck.text(request.initiator, "initiator", limit: InputLimits.labelBytes)
        try InputCheck.text(request.sourceSystem, "source_system", limit: InputLimits.labelBytes)
        try InputCheck.text(request.reason, "reason", limit: InputLimits.reasonBytes)
        try InputCheck.text(request.idempotencyKey, "idempotency_key", limit: InputLimits.labelBytes)
        // An empty tag could never be listed by (ListTasks takes an empty tag as no filter).
        try InputCheck.texts(request.tags, "tags", limit: InputLimits.nameBytes, count: InputLimits.tagsPerTask, required: true)
        try InputCheck.texts(request.bypassSteps, "bypass_steps", limit: InputLimits.nameBytes, count: InputLimits.stepsPerTemplate)
        guard (0...5).contains(request.priority) else {
            throw .invalidArgument("priority is 1 (first) to 5 (last), or 0 for the default 3; not \(request.priority)")
        }
        if request.hasStartAt { try InputCheck.startAt(request.startAt) }
        return try InputCheck.json(request.context, "context", limit: InputLimits.contextBytes)
    }

    /// Checks the context against the template's schema and the bypassed steps against its steps.
    /// A schema with patterns is checked on the shared concurrency threads, never on the
    /// event loop that called: a pattern may take its whole step budget on a long string.
    func validate(_ request: Tasker_V1_SubmitTaskRequest, against validated: ValidatedTemplate) async throws(EngineError) {
        guard validated.schema?.hasPatterns == true else { return try Self.check(request, against: validated) }
        let checked = await Task.detached { () -> Result<Void, EngineError> in
            Result { () throws(EngineError) in try Self.check(request, against: validated) }
        }.value
        try checked.get()
    }

    private static func check(_ request: Tasker_V1_SubmitTaskRequest, against validated: ValidatedTemplate) throws(EngineError) {
        let template = validated.template
        if let schema = validated.schema {
            let violations = schema.violations(of: JSONValue(request.context))
            if !violations.isEmpty {
                throw .invalidArgument("context does not match the schema of \(template.name) \(template.version): "
                    + violations.map(\.description).joined(separator: "; "))
            }
        }
        for name in request.bypassSteps {
            guard let step = template.steps.first(where: { $0.name == name }) else {
                throw .invalidArgument("bypass_steps names \(InputCheck.quoted(name)), which is not a step of \(template.name) \(template.version)")
            }
            guard step.skippable else { throw .invalidArgument("step \(InputCheck.quoted(name)) is not skippable, so it cannot be bypassed") }
        }
    }

    private enum SubmitOutcome: Sendable {
        /// `admitted`: first steps of limited tasks given a place, this one's or older ones'.
        case written(Tasker_V1_Task, created: Bool, admitted: [DelayedStep] = [])
        /// Another node registered a newer version after this one read which is the newest.
        case staleTemplate
    }

    /// A task, its steps, edges and first transitions in one statement ($33: the start asked
    /// for, or null; $34: the priority; $35: the start when it is later than now, or null;
    /// $36, $37: each step's concurrency key and limit, or nulls; $38: the template's timeout;
    /// $39: each step's schedule-to-start limit). No row comes back with `newest` false when
    /// $32 names a registration that is no longer its name's newest (a higher version came
    /// since), and no created_at when the idempotency key is taken; either way nothing is written.
    static let insertTaskStatement = insertStatement(rateLimits: false)

    /// The same with $40, each step's rate limits (or nulls): a statement of its own, so that
    /// the tasks of templates without rate limits are written by the statement, and the plan,
    /// they always were.
    static let insertRateLimitedTaskStatement = insertStatement(rateLimits: true)

    private static func insertStatement(rateLimits: Bool) -> String {
        let (column, value, array) = rateLimits ? (", rate_limits", ", x.rate_limits", ", $40::text[]") : ("", "", "")
        return """
        WITH current AS (
            SELECT $32::bigint IS NULL OR NOT EXISTS (
                SELECT 1 FROM task_templates t JOIN task_templates mine ON mine.name = t.name AND mine.registration = $32::bigint
                WHERE t.name = $2 AND (t.version_order, t.registration) > (mine.version_order, mine.registration)) AS newest),
        task AS (
            INSERT INTO tasks (task_id, name, version, status, context, initiator, source_system, reason, tags,
                idempotency_key, last_sequence, start_at, priority, deadline_at)
            SELECT $1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9::text[], $10, $11, $33::timestamptz, $34::smallint,
                CASE WHEN $38::integer > 0 THEN greatest(now(), coalesce($33::timestamptz, now())) + make_interval(secs => $38::integer) END
            FROM current WHERE current.newest
            ON CONFLICT (name, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
            RETURNING task_id, created_at, deadline_at),
        new_steps AS (
            INSERT INTO steps (step_id, task_id, name, handler, position, status, retry_limit, retryable, skippable,
                timeout_seconds, backoff_base_seconds, backoff_max_seconds, backoff_jitter, unmet_dependencies, depends_on,
                queued_at, next_attempt_at, concurrency_key, concurrency_max, schedule_to_start_seconds\(column))
            SELECT x.step_id, task.task_id, x.name, x.handler, x.position, x.status, x.retry_limit, x.retryable, x.skippable,
                x.timeout_seconds, x.backoff_base_seconds, x.backoff_max_seconds, x.backoff_jitter, x.unmet_dependencies,
                x.depends_on::text[], CASE WHEN x.status = 2 THEN task.created_at END,  -- 2: ENQUEUED
                -- A delayed task's first steps wait PENDING (1) until its start.
                CASE WHEN x.status = 1 AND x.unmet_dependencies = 0 THEN $35::timestamptz END, x.concurrency_key, x.concurrency_max,
                x.schedule_to_start_seconds\(value)
            FROM task, unnest($12::uuid[], $13::text[], $14::text[], $15::smallint[], $16::smallint[], $17::integer[],
                $18::boolean[], $19::boolean[], $20::integer[], $21::float8[], $22::float8[], $23::float8[], $24::integer[],
                $25::text[], $36::text[], $37::integer[], $39::integer[]\(array))
                AS x(step_id, name, handler, position, status, retry_limit, retryable, skippable, timeout_seconds,
                    backoff_base_seconds, backoff_max_seconds, backoff_jitter, unmet_dependencies, depends_on,
                    concurrency_key, concurrency_max, schedule_to_start_seconds\(column))),
        new_edges AS (
            INSERT INTO step_edges (task_id, from_step, to_step)
            SELECT task.task_id, x.from_step, x.to_step FROM task, unnest($26::uuid[], $27::uuid[]) AS x(from_step, to_step)),
        history AS (
            INSERT INTO step_transitions (task_id, sequence, step_id, step_name, status, previous_status, task_status)
            SELECT task.task_id, x.sequence, x.step_id, x.step_name, x.status, x.previous_status, $4::smallint
            FROM task, unnest($28::uuid[], $29::text[], $30::smallint[], $31::smallint[]) WITH ORDINALITY
                AS x(step_id, step_name, status, previous_status, sequence))
        SELECT current.newest, extract(epoch FROM task.created_at)::text AS created_at,
            extract(epoch FROM task.deadline_at)::text AS deadline_at FROM current LEFT JOIN task ON true
        """
    }
}

/// A new task as SubmitTask writes it: the steps' first statuses (bypassed ones SKIPPED, those
/// with nothing left to wait for ENQUEUED, or PENDING until a later start), its edges and its
/// first history, all known before anything is written, so that one statement writes them
/// with one round trip and one commit.
struct NewTask {
    var task = Tasker_V1_Task()
    /// A start later than now (Unix seconds): the first steps wait for it.
    private(set) var startAt: Double?
    /// The first steps of a delayed task, with when they become ready.
    private(set) var delayed: [DelayedStep] = []
    private var stepIDs: [String] = []
    private var statuses: [Int] = []
    private var unmet: [Int] = []
    private(set) var edges: [(from: String, to: String)] = []
    /// Transitions after the task's own first one: bypassed steps, then enqueued ones.
    private(set) var history: [(stepID: String?, stepName: String, status: Int, previousStatus: Int, handler: String?)] = []
    /// Each step's concurrency limit by its id.
    private var limits: [String: StepConcurrency] = [:]

    /// Each step's concurrency key as this task's context makes it; nil for a step without a limit.
    private(set) var concurrencyKeys: [String?] = []
    /// The task's concurrency key as its context makes it; nil without a limit. Such a task is
    /// written waiting for a place: its first steps PENDING with no time to start.
    private(set) var taskConcurrencyKey: String?
    /// Each step's rate limits as this task's context makes them; nil for a step without.
    private(set) var rateLimits: [StepRateLimits?] = []
    private var rates: [String: StepRateLimits] = [:]

    init(_ template: Tasker_V1_TaskTemplate, request: Tasker_V1_SubmitTaskRequest, bypassed: Set<String>, columns: TemplateStepColumns) throws(EngineError) {
        let keys = columns.concurrencyKeys
        task.taskID = TimeOrderedUUID.make()
        task.name = template.name
        task.version = template.version
        task.status = .pending
        task.context = request.context
        task.initiator = request.initiator
        task.sourceSystem = request.sourceSystem
        task.reason = request.reason
        task.tags = request.tags
        task.priority = request.priority == 0 ? 3 : request.priority
        if request.hasStartAt {
            // Kept to the microsecond, as Postgres keeps it: the task read back is the one answered.
            task.startAt = Google_Protobuf_Timestamp(seconds: request.startAt.seconds, nanos: request.startAt.nanos / 1000 * 1000)
            let at = Double(request.startAt.seconds) + Double(request.startAt.nanos) / 1e9
            if at > Date().timeIntervalSince1970 { startAt = at }
        }
        history.append((nil, "", 0, 0, nil))
        var idByName: [String: String] = [:]
        var enqueued: [(stepID: String?, stepName: String, status: Int, previousStatus: Int, handler: String?)] = []
        let context = keys.contains { $0 != nil } || columns.rendersRateKeys || columns.taskConcurrencyKey != nil ? JSONValue(request.context) : .null
        if template.hasConcurrency {
            var key = template.name
            if let parts = columns.taskConcurrencyKey {
                key = try parts.rendered(for: context, kind: "task concurrency key")
            }
            try InputCheck.text(key, "the task's concurrency key", limit: InputLimits.labelBytes)
            taskConcurrencyKey = key
            task.concurrencyKey = key
        }
        let waits = taskConcurrencyKey != nil
        task.admitted = !waits
        for (index, step) in template.steps.enumerated() {
            if let key = keys[index] {
                let rendered: String
                do {
                    rendered = try key.rendered(for: context, kind: "concurrency key")
                } catch {
                    throw .invalidArgument("step \(InputCheck.quoted(step.name)): \(error.description)")
                }
                // Empty: one key for the whole step of the template.
                let named = step.concurrency.key.isEmpty ? "\(template.name)/\(step.name)" : rendered
                try InputCheck.text(named, "step \(InputCheck.quoted(step.name))'s concurrency key", limit: InputLimits.labelBytes)
                concurrencyKeys.append(named)
            } else {
                concurrencyKeys.append(nil)
            }
            rateLimits.append(try StepRateLimits.rendered(columns.rateLimits[index], step: step.name, template: template.name, context: context))
            let stepID = TimeOrderedUUID.make()
            if let key = concurrencyKeys[index] { limits[stepID] = StepConcurrency(key: key, maxRunning: Int(step.concurrency.maxRunning)) }
            if let rates = rateLimits[index] { self.rates[stepID] = rates }
            idByName[step.name] = stepID
            let unmet = step.dependsOn.reduce(0) { $0 + (bypassed.contains($1) ? 0 : 1) }
            let status: StepStatus = bypassed.contains(step.name) ? .skipped : unmet == 0 && startAt == nil && !waits ? .enqueued : .pending
            if status == .pending, unmet == 0, !waits, let startAt { delayed.append(DelayedStep(stepID: stepID, at: startAt)) }
            stepIDs.append(stepID)
            statuses.append(status.rawValue)
            self.unmet.append(unmet)
            let transition = (Optional(stepID), step.name, status.rawValue, StepStatus.pending.rawValue, Optional(step.handler))
            if status == .skipped { history.append(transition) }
            if status == .enqueued { enqueued.append(transition) }
            var workflowStep = Tasker_V1_WorkflowStep()
            workflowStep.stepID = stepID
            workflowStep.name = step.name
            workflowStep.handler = step.handler
            workflowStep.status = status
            workflowStep.dependsOn = step.dependsOn
            workflowStep.retryLimit = step.retryLimit
            workflowStep.retryable = step.retryable
            workflowStep.skippable = step.skippable
            workflowStep.concurrencyKey = concurrencyKeys[index] ?? ""
            workflowStep.rateLimitKeys = rateLimits[index]?.keys ?? []
            task.steps.append(workflowStep)
        }
        history += enqueued
        for step in template.steps {
            for dependency in step.dependsOn { edges.append((idByName[dependency]!, idByName[step.name]!)) }
        }
    }

    /// The steps' columns in the order of insertTaskStatement's $12…$25.
    func stepColumns(_ shared: TemplateStepColumns) -> [String?] {
        [PostgresArrayLiteral.of(stepIDs), shared.names, shared.handlers, shared.positions, PostgresArrayLiteral.of(statuses),
         shared.retryLimits, shared.retryables, shared.skippables, shared.timeouts, shared.backoffBases, shared.backoffMaxes,
         shared.backoffJitters, PostgresArrayLiteral.of(unmet), shared.dependsOn]
    }

    /// $26, $27.
    var edgeColumns: [String?] {
        [PostgresArrayLiteral.of(edges.map(\.from)), PostgresArrayLiteral.of(edges.map(\.to))]
    }

    /// The task's first transitions, as observers are told of them.
    var changes: [StepChange] {
        history.enumerated().map { index, entry in
            StepChange(
                taskID: task.taskID, sequence: index + 1, stepID: entry.stepID, stepName: entry.stepName,
                status: StepStatus(rawValue: entry.status) ?? .unspecified,
                previous: StepStatus(rawValue: entry.previousStatus) ?? .unspecified, attempt: 0, taskStatus: .pending,
                resultsJSON: nil, errorJSON: nil,
                handler: entry.status == StepStatus.enqueued.rawValue ? entry.handler : nil, retryAt: nil, priority: Int(task.priority),
                concurrency: entry.stepID.flatMap { limits[$0] }, rateLimits: entry.stepID.flatMap { rates[$0] })
        }
    }

    /// $28…$31.
    var historyColumns: [String?] {
        [PostgresArrayLiteral.of(history.map(\.stepID)), PostgresArrayLiteral.of(history.map(\.stepName)),
         PostgresArrayLiteral.of(history.map(\.status)), PostgresArrayLiteral.of(history.map(\.previousStatus))]
    }
}

/// The columns every task of a template shares for its steps, as array literals made once
/// per template rather than on every submit.
struct TemplateStepColumns: Sendable {
    let names, handlers, positions, retryLimits, retryables, skippables, timeouts: String
    let backoffBases, backoffMaxes, backoffJitters, dependsOn, concurrencyMaxes, scheduleToStarts: String
    /// Each step's concurrency key, parsed once; nil for a step without a limit.
    let concurrencyKeys: [LimitKey?]
    /// Each step's rate limits, parsed once.
    let rateLimits: [[RateLimitTemplate]]
    /// Whether some rate limit's key is made from the context.
    let rendersRateKeys: Bool
    /// Whether some step has a rate limit.
    var hasRateLimits: Bool { rateLimits.contains { !$0.isEmpty } }
    /// The template's task concurrency key, parsed once; nil without a limit or with an empty key.
    let taskConcurrencyKey: LimitKey?

    init(_ template: Tasker_V1_TaskTemplate) {
        let steps = template.steps
        names = PostgresArrayLiteral.of(steps.map(\.name))
        handlers = PostgresArrayLiteral.of(steps.map(\.handler))
        positions = PostgresArrayLiteral.of(Array(steps.indices))
        retryLimits = PostgresArrayLiteral.of(steps.map(\.retryLimit))
        retryables = PostgresArrayLiteral.of(steps.map(\.retryable))
        skippables = PostgresArrayLiteral.of(steps.map(\.skippable))
        timeouts = PostgresArrayLiteral.of(steps.map(\.timeoutSeconds))
        backoffBases = PostgresArrayLiteral.of(steps.map(\.backoff.baseSeconds))
        backoffMaxes = PostgresArrayLiteral.of(steps.map(\.backoff.maxSeconds))
        backoffJitters = PostgresArrayLiteral.of(steps.map(\.backoff.jitter))
        dependsOn = PostgresArrayLiteral.of(steps.map { PostgresArrayLiteral.of($0.dependsOn) })
        concurrencyMaxes = PostgresArrayLiteral.of(steps.map { $0.hasConcurrency ? String($0.concurrency.maxRunning) : nil })
        scheduleToStarts = PostgresArrayLiteral.of(steps.map(\.scheduleToStartSeconds))
        // Registration checked every key: one that does not parse is no limit only if stored
        // before limits existed, which cannot be.
        concurrencyKeys = steps.map { $0.hasConcurrency ? try? LimitKey(parsing: $0.concurrency.key) : nil }
        rateLimits = steps.map { $0.rateLimits.compactMap { try? RateLimitTemplate($0) } }
        rendersRateKeys = rateLimits.joined().contains { $0.key != nil }
        taskConcurrencyKey = template.hasConcurrency && !template.concurrency.key.isEmpty ? try? LimitKey(parsing: template.concurrency.key) : nil
    }
}
