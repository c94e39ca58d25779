import Foundation
import TaskerProto
import TaskerStore

/// A task and all its steps as one transaction sees them under the task's row lock, and the
/// transitions that transaction makes to them. Every change to a task is worked out here, in
/// memory, by the state machines, and then written by one statement (`write`): every
/// operation takes the same five round trips (begin, lock, read, write, commit) whatever it
/// changes. The lock is taken before the steps are read, so they are read as the previous
/// holder of the lock left them.
struct LockedTask {
    /// A step as read, and what this transaction does to it.
    struct Step {
        let stepID: String
        let name: String
        let handler: String
        let dependsOn: [String]
        let backoff: Tasker_V1_BackoffPolicy
        let timeoutSeconds: Int32
        /// Its stored results (JSON), for the steps that depend on it.
        let storedResults: String?
        /// A retry whose time has come.
        let due: Bool
        /// A first step of a delayed task whose start has not come.
        let startsLater: Bool
        let concurrency: StepConcurrency?
        let rateLimits: StepRateLimits?
        /// Seconds it may wait ENQUEUED before an attempt starts; 0: no limit.
        let scheduleToStart: Int?
        /// Seconds since it was last ENQUEUED, and since its attempt started (when it has).
        let queuedFor: Double?
        let runningFor: Double?
        var machine: StepStateMachine
        var unmet: Int

        // What the write sets.
        var changed = false
        var results: String?
        var error: String?
        var retryIn: Double?
        var completion = Completion.keep
        var queued = false
        var started = false

        enum Completion: Int {
            case keep = 0, now = 1, clear = 2
        }
    }

    let taskID: String
    let taskName: String
    let contextJSON: String?
    /// 1 (first) … 5 (last).
    let priority: Int
    private(set) var status: TaskStatus
    private var taskStatusChanged = false
    private(set) var steps: [Step]
    private var lastSequence: Int
    private(set) var transitions: [StepChange] = []
    private(set) var annotations: [(stepName: String, type: String, json: String)] = []
    private(set) var measurements: [EngineMeasurement] = []
    /// Seconds since the task was submitted.
    let age: Double
    /// Its template's concurrency key as its context made it; nil without a limit.
    let concurrencyKey: String?
    /// Whether this transaction finished a task that held (or waited for) a place of its key.
    var freesPlace: Bool { concurrencyKey != nil && taskStatusChanged && TaskStatusRule.isFinished(status) }
    /// The node a started attempt belongs to.
    var node: String?

    // MARK: Reading

    /// Locks the task of a step and reads it; nil when there is no such step.
    static func lock(taskOf stepID: String, _ connection: PostgresConnection) throws -> LockedTask? {
        try lock(tasksOf: [stepID], connection).first
    }

    /// Locks a task and reads it; nil when there is no such task.
    static func lock(_ taskID: String, _ connection: PostgresConnection) throws -> LockedTask? {
        let task = try connection.query(
            "SELECT \(taskColumns) FROM tasks WHERE task_id = $1 FOR UPDATE", [taskID])
        return try read(task, connection).first
    }

    /// Locks the tasks of the steps, in task id order (so that two transactions locking
    /// several never wait on each other in a circle), and reads them.
    static func lock(tasksOf stepIDs: [String], _ connection: PostgresConnection) throws -> [LockedTask] {
        guard !stepIDs.isEmpty else { return [] }
        let tasks = try connection.query(
            """
            SELECT \(taskColumns) FROM tasks
            WHERE task_id = ANY(ARRAY(SELECT task_id FROM steps WHERE step_id = ANY($1::uuid[]))) ORDER BY task_id FOR UPDATE
            """, [PostgresArrayLiteral.of(stepIDs)])
        return try read(tasks, connection)
    }

    private static let taskColumns = """
        task_id::text AS task_id, name, status, last_sequence, context::text AS context, priority, concurrency_key,
        extract(epoch FROM now() - created_at)::float8 AS age
        """

    /// The steps of the locked tasks, read after the locks are held.
    private static func read(_ tasks: PostgresRows, _ connection: PostgresConnection) throws -> [LockedTask] {
        let ids = tasks.compactMap { $0["task_id"] }
        guard !ids.isEmpty else { return [] }
        var stepsByTask: [String: [Step]] = [:]
        for row in try connection.query(
            """
            SELECT task_id::text AS task_id, step_id::text AS step_id, name, handler, status, attempts, retry_limit, retryable,
                unmet_dependencies, array_to_json(depends_on)::text AS depends_on, backoff_base_seconds, backoff_max_seconds,
                backoff_jitter, timeout_seconds, results::text AS results, coalesce(next_attempt_at <= now(), false) AS due,
                coalesce(status = \(StepStatus.pending.rawValue) AND next_attempt_at > now(), false) AS starts_later,
                concurrency_key, concurrency_max, schedule_to_start_seconds, rate_limits,
                extract(epoch FROM now() - queued_at)::float8 AS queued_for,
                extract(epoch FROM now() - last_attempted_at)::float8 AS running_for
            FROM steps WHERE task_id = ANY($1::uuid[]) ORDER BY task_id, position
            """, [PostgresArrayLiteral.of(ids)])
        {
            var backoff = Tasker_V1_BackoffPolicy()
            backoff.baseSeconds = row.double("backoff_base_seconds") ?? 1
            backoff.maxSeconds = row.double("backoff_max_seconds") ?? 300
            backoff.jitter = row.double("backoff_jitter") ?? 0.1
            stepsByTask[row["task_id"]!, default: []].append(Step(
                stepID: row["step_id"]!, name: row["name"] ?? "", handler: row["handler"] ?? "",
                dependsOn: Rows.strings(row["depends_on"]), backoff: backoff,
                timeoutSeconds: Int32(row.int("timeout_seconds") ?? 0), storedResults: row["results"], due: row.bool("due") ?? false,
                startsLater: row.bool("starts_later") ?? false,
                concurrency: StepConcurrency(key: row["concurrency_key"], maxRunning: row.int("concurrency_max")),
                rateLimits: StepRateLimits(stored: row["rate_limits"]), scheduleToStart: row.int("schedule_to_start_seconds"),
                queuedFor: row.double("queued_for"), runningFor: row.double("running_for"),
                machine: StepStateMachine(
                    status: StepStatus(rawValue: row.int("status") ?? 0) ?? .unspecified, attempts: Int32(row.int("attempts") ?? 0),
                    retryLimit: Int32(row.int("retry_limit") ?? 0), retryable: row.bool("retryable") ?? true),
                unmet: row.int("unmet_dependencies") ?? 0))
        }
        return tasks.map { task in
            let taskID = task["task_id"]!
            return LockedTask(
                taskID: taskID, taskName: task["name"] ?? "", contextJSON: task["context"], priority: task.int("priority") ?? 3,
                status: TaskStatus(rawValue: task.int("status") ?? 0) ?? .unspecified, steps: stepsByTask[taskID] ?? [],
                lastSequence: task.int("last_sequence") ?? 0, age: task.double("age") ?? 0, concurrencyKey: task["concurrency_key"])
        }
    }

    private init(
        taskID: String, taskName: String, contextJSON: String?, priority: Int, status: TaskStatus, steps: [Step], lastSequence: Int, age: Double,
        concurrencyKey: String?
    ) {
        self.concurrencyKey = concurrencyKey
        self.age = age
        self.priority = priority
        self.taskID = taskID
        self.taskName = taskName
        self.contextJSON = contextJSON
        self.status = status
        self.steps = steps
        self.lastSequence = lastSequence
    }

    /// The bytes of the context and every step's results as they will stand, with step
    /// `index`'s results `size` bytes: what InputLimits.taskBytes bounds.
    func storedBytes(withResults size: Int, of index: Int) -> Int {
        var total = (contextJSON?.utf8.count ?? 0) + size
        for other in steps.indices where other != index {
            total += (steps[other].results ?? steps[other].storedResults)?.utf8.count ?? 0
        }
        return total
    }

    /// The annotations the task has, stored and about to be.
    func annotationCount(_ connection: PostgresConnection) throws -> Int {
        let stored = try connection.query("SELECT count(*) AS count FROM annotations WHERE task_id = $1", [taskID])
        return (stored.first?.int("count") ?? 0) + annotations.count
    }

    func index(of stepID: String) -> Int? {
        steps.firstIndex { $0.stepID == stepID }
    }

    func index(named name: String) -> Int? {
        steps.firstIndex { $0.name == name }
    }

    // MARK: Transitions

    /// Moves step `index` by `event`, recording the transition; refuses as the machine does.
    mutating func apply(
        _ event: StepStateMachine.Event, to index: Int, results: String? = nil, error: String? = nil, retryIn: Double? = nil
    ) throws(StepStateMachine.Refusal) {
        let previous = steps[index].machine.status
        let status = try steps[index].machine.apply(event)
        steps[index].changed = true
        steps[index].results = results ?? steps[index].results
        steps[index].error = error ?? steps[index].error
        steps[index].retryIn = retryIn
        switch status {
        case .complete, .error, .cancelled, .resolvedManually:
            steps[index].completion = .now
        case .pending:
            steps[index].completion = .clear
        default:
            break
        }
        if event == .start {
            steps[index].started = true
            // Queued in this same transaction: it waited for nothing.
            measure(.started(handler: steps[index].handler, queuedFor: steps[index].queued ? 0 : steps[index].queuedFor ?? 0))
        }
        if status == .enqueued { steps[index].queued = true }
        record(step: index, status: status, previous: previous, results: results, error: error,
               retryAt: retryIn.map { Date().timeIntervalSince1970 + $0 })
        if steps[index].machine.satisfiesDependents, !Self.satisfied(previous) {
            for dependent in steps.indices where steps[dependent].dependsOn.contains(steps[index].name) {
                steps[dependent].unmet -= 1
                steps[dependent].changed = true
            }
        }
    }

    private static func satisfied(_ status: StepStatus) -> Bool {
        [.complete, .skipped, .resolvedManually].contains(status)
    }

    /// Every step that can run now goes to the queue: PENDING with nothing unmet (and, for a
    /// delayed task's first steps, its start come), or a retry that has fallen due. A finished
    /// task enqueues nothing.
    mutating func enqueueReady() {
        guard !TaskStatusRule.isFinished(status) else { return }
        for index in steps.indices {
            let step = steps[index]
            let ready = (step.machine.status == .pending && step.unmet == 0 && !step.startsLater)
                || (step.machine.status == .waitingForRetry && step.due)
            if ready { try? apply(.enqueue, to: index) }
        }
    }

    /// The task's status from its steps' (TaskStatusRule); a cancelled task stays cancelled.
    mutating func settle() {
        guard status != .cancelled else { return }
        setStatus(TaskStatusRule.status(of: steps.map(\.machine.status), cancelled: false))
    }

    mutating func setStatus(_ next: TaskStatus) {
        guard next != status else { return }
        status = next
        taskStatusChanged = true
        if TaskStatusRule.isFinished(next) { measure(.taskFinished(template: taskName, status: next, after: age)) }
        record(step: nil, status: .unspecified, previous: .unspecified)
    }

    mutating func measure(_ measurement: EngineMeasurement) {
        measurements.append(measurement)
    }

    mutating func annotate(stepName: String, type: String, json: String) {
        annotations.append((stepName, type, json))
    }

    private mutating func record(
        step index: Int?, status: StepStatus, previous: StepStatus, results: String? = nil, error: String? = nil, retryAt: Double? = nil
    ) {
        lastSequence += 1
        let step = index.map { steps[$0] }
        transitions.append(StepChange(
            taskID: taskID, sequence: lastSequence, stepID: step?.stepID, stepName: step?.name ?? "", status: status,
            previous: previous, attempt: step?.machine.attempts ?? 0, taskStatus: self.status, resultsJSON: results,
            errorJSON: error, handler: status == .enqueued ? step?.handler : nil, retryAt: retryAt, priority: priority,
            concurrency: step?.concurrency, rateLimits: step?.rateLimits))
    }

    // MARK: Writing

    /// Writes every change in one statement; returns the transitions, to be told once the
    /// transaction commits.
    func write(_ connection: PostgresConnection) throws -> [StepChange] {
        guard !transitions.isEmpty || steps.contains(where: \.changed) || !annotations.isEmpty else { return [] }
        let changed = steps.filter(\.changed)
        // A task transition records the task status it led to; a step's, the status at the time.
        let parameters: [String?] = [
            taskID, String(status.rawValue), String(lastSequence), taskStatusChanged ? "t" : "f",
            TaskStatusRule.isFinished(status) ? "t" : "f", node,
            PostgresArrayLiteral.of(changed.map(\.stepID)),
            PostgresArrayLiteral.of(changed.map { Int($0.machine.status.rawValue) }),
            PostgresArrayLiteral.of(changed.map(\.machine.attempts)),
            PostgresArrayLiteral.of(changed.map(\.unmet)),
            PostgresArrayLiteral.of(changed.map(\.results)),
            PostgresArrayLiteral.of(changed.map(\.error)),
            PostgresArrayLiteral.of(changed.map { $0.retryIn.map { String($0) } }),
            PostgresArrayLiteral.of(changed.map(\.completion.rawValue)),
            PostgresArrayLiteral.of(changed.map(\.queued)),
            PostgresArrayLiteral.of(changed.map(\.started)),
            PostgresArrayLiteral.of(transitions.map(\.sequence)),
            PostgresArrayLiteral.of(transitions.map(\.stepID)),
            PostgresArrayLiteral.of(transitions.map(\.stepName)),
            PostgresArrayLiteral.of(transitions.map { Int($0.status.rawValue) }),
            PostgresArrayLiteral.of(transitions.map { Int($0.previous.rawValue) }),
            PostgresArrayLiteral.of(transitions.map(\.attempt)),
            PostgresArrayLiteral.of(transitions.map(\.resultsJSON)),
            PostgresArrayLiteral.of(transitions.map(\.errorJSON)),
            PostgresArrayLiteral.of(transitions.map { Int($0.taskStatus.rawValue) }),
            PostgresArrayLiteral.of(annotations.map(\.stepName)),
            PostgresArrayLiteral.of(annotations.map(\.type)),
            PostgresArrayLiteral.of(annotations.map(\.json)),
        ]
        try connection.query(Self.writeStatement, parameters)
        return transitions
    }

    static let writeStatement = """
        WITH step_changes AS (
            UPDATE steps s SET status = x.status, attempts = x.attempts, unmet_dependencies = x.unmet,
                results = coalesce(x.results::jsonb, s.results),
                last_error = coalesce(x.error::jsonb, s.last_error),
                next_attempt_at = CASE WHEN x.retry_in IS NULL THEN NULL ELSE now() + make_interval(secs => x.retry_in) END,
                completed_at = CASE x.completion WHEN 1 THEN now() WHEN 2 THEN NULL ELSE s.completed_at END,
                queued_at = CASE WHEN x.queued THEN now() ELSE s.queued_at END,
                last_attempted_at = CASE WHEN x.started THEN now() ELSE s.last_attempted_at END,
                node_id = CASE WHEN x.started THEN $6::uuid ELSE s.node_id END
            FROM unnest($7::uuid[], $8::smallint[], $9::integer[], $10::integer[], $11::text[], $12::text[], $13::float8[],
                $14::smallint[], $15::boolean[], $16::boolean[])
                AS x(step_id, status, attempts, unmet, results, error, retry_in, completion, queued, started)
            -- The task's own steps first: its index, never a scan of every step.
            WHERE s.task_id = $1 AND s.step_id = x.step_id),
        task_change AS (
            UPDATE tasks SET status = $2, last_sequence = $3, updated_at = now(),
                completed_at = CASE WHEN NOT $4 THEN completed_at WHEN $5 THEN now() ELSE NULL END
            WHERE task_id = $1),
        history AS (
            INSERT INTO step_transitions (task_id, sequence, step_id, step_name, status, previous_status, attempt, results, error, task_status)
            SELECT $1, x.sequence, x.step_id, x.step_name, x.status, x.previous, x.attempt, x.results::jsonb, x.error::jsonb, x.task_status
            FROM unnest($17::bigint[], $18::uuid[], $19::text[], $20::smallint[], $21::smallint[], $22::integer[], $23::text[],
                $24::text[], $25::smallint[])
                AS x(sequence, step_id, step_name, status, previous, attempt, results, error, task_status)),
        notes AS (
            INSERT INTO annotations (task_id, step_name, type, annotation)
            SELECT $1, x.step_name, x.type, x.annotation::jsonb FROM unnest($26::text[], $27::text[], $28::text[]) AS x(step_name, type, annotation))
        SELECT 1
        """
}
