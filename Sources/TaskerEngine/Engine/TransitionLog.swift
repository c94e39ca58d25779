import TaskerProto
import TaskerStore

/// The transitions one transaction makes to a task, written to the history with the task's
/// next sequence numbers. The task row is locked by the update that takes the numbers, so two
/// transactions never hand out the same one, and a rolled-back one hands out none: gapless.
struct TransitionLog {
    struct Entry {
        var stepID: String?
        var stepName: String
        var status: StepStatus
        var previous: StepStatus
        var attempt: Int32
        var resultsJSON: String?
        var errorJSON: String?
        var taskStatus: TaskStatus
        var handler: String?
        var retryAt: Double?
    }

    let taskID: String
    var taskStatus: TaskStatus
    private(set) var entries: [Entry] = []

    init(taskID: String, taskStatus: TaskStatus) {
        self.taskID = taskID
        self.taskStatus = taskStatus
    }

    /// A transition of the task alone.
    mutating func task(_ status: TaskStatus) {
        taskStatus = status
        entries.append(Entry(
            stepID: nil, stepName: "", status: .unspecified, previous: .unspecified, attempt: 0,
            resultsJSON: nil, errorJSON: nil, taskStatus: status, handler: nil, retryAt: nil))
    }

    mutating func step(
        _ stepID: String, _ name: String, _ status: StepStatus, from previous: StepStatus, attempt: Int32 = 0,
        results: String? = nil, error: String? = nil, taskStatus: TaskStatus, handler: String? = nil, retryAt: Double? = nil
    ) {
        self.taskStatus = taskStatus
        entries.append(Entry(
            stepID: stepID, stepName: name, status: status, previous: previous, attempt: attempt,
            resultsJSON: results, errorJSON: error, taskStatus: taskStatus, handler: handler, retryAt: retryAt))
    }

    /// Writes the entries with the task's next sequence numbers, and records them in `changes`
    /// to be told once the transaction commits.
    func write(_ connection: PostgresConnection, into changes: ChangeSet) throws {
        guard !entries.isEmpty else { return }
        let claimed = try connection.query(
            "UPDATE tasks SET last_sequence = last_sequence + $2, updated_at = now() WHERE task_id = $1 RETURNING last_sequence",
            [taskID, String(entries.count)])
        guard let last = claimed.first?.int("last_sequence") else { return }
        let firstSequence = last - entries.count + 1
        var values: [String] = []
        var parameters: [String?] = [taskID]
        for (index, entry) in entries.enumerated() {
            let sequence = firstSequence + index
            let fields: [String?] = [
                String(sequence), entry.stepID, entry.stepName, String(entry.status.rawValue), String(entry.previous.rawValue),
                String(entry.attempt), entry.resultsJSON, entry.errorJSON, String(entry.taskStatus.rawValue),
            ]
            let base = parameters.count
            values.append("($1, " + (1...fields.count).map { n -> String in
                let cast = [2: "::uuid", 7: "::jsonb", 8: "::jsonb"][n] ?? ""
                return "$\(base + n)\(cast)"
            }.joined(separator: ", ") + ")")
            parameters += fields
        }
        try connection.query(
            """
            INSERT INTO step_transitions (task_id, sequence, step_id, step_name, status, previous_status, attempt, results, error, task_status)
            VALUES \(values.joined(separator: ", "))
            """, parameters)
        changes.append(contentsOf: entries.enumerated().map { index, entry in
            StepChange(
                taskID: taskID, sequence: firstSequence + index, stepID: entry.stepID, stepName: entry.stepName,
                status: entry.status, previous: entry.previous, attempt: entry.attempt, taskStatus: entry.taskStatus,
                resultsJSON: entry.resultsJSON, errorJSON: entry.errorJSON, handler: entry.handler, retryAt: entry.retryAt)
        })
    }
}
