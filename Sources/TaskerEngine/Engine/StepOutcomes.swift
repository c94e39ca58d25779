import Foundation
import NIOConcurrencyHelpers
import SwiftProtobuf
import TaskerProto
import TaskerStore

/// What an attempt came to, as a worker (or a test) reports it, or as the node finds it.
public enum StepOutcome: Sendable {
    case success(results: Google_Protobuf_Struct, annotations: [Tasker_V1_Annotation])
    case failure(message: String, retryable: Bool, backoffRequestSeconds: Int32)
    /// The attempt went with its worker or node, or on its way: a retryable failure saying so.
    case lost(message: String)
    /// The attempt ran past its step's timeout: a retryable failure.
    case timedOut(seconds: Int)

    /// A failure's message, whether it may be tried again, the least backoff asked for, and
    /// how it is counted.
    var failure: (message: String, retryable: Bool, backoffRequestSeconds: Int32, outcome: AttemptOutcome)? {
        switch self {
        case .success: nil
        case .failure(let message, let retryable, let requested):
            (message, retryable, requested, retryable ? .retryableFailure : .permanentFailure)
        case .lost(let message): (message, true, 0, .lost)
        case .timedOut(let seconds): ("timed out after \(seconds) s", true, 0, .timedOut)
        }
    }
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

extension TaskEngine {
    /// A worker takes an ENQUEUED step: a new attempt starts, owned by `node`, and the task is
    /// IN_PROGRESS. Returns what the worker needs to run it, or nil when the step was not
    /// ENQUEUED (taken already, or cancelled): nothing changes then.
    public func startStep(_ stepID: String, node: String? = nil) async throws(EngineError) -> StartedStep? {
        let id = try Self.stepID(stepID)
        return try await startSteps([id], node: node)[id]
    }

    /// Starts several steps in one transaction, so they share one commit; the result has
    /// those that were ENQUEUED, by step id. Ids that are not step ids start nothing.
    ///
    /// The commit does not wait for the disk: should a crash lose it, the steps are ENQUEUED
    /// again (the sweeper queues them) and the attempts' results are fenced off, so the steps
    /// simply run again, as after the loss of a worker. Every later commit of the task flushes
    /// it first.
    public func startSteps(_ stepIDs: [String], node: String? = nil) async throws(EngineError) -> [String: StartedStep] {
        let ids = stepIDs.compactMap { try? Self.stepID($0) }
        guard !ids.isEmpty else { return [:] }
        return try await transaction(flushCommit: false) { connection, changes -> [String: StartedStep] in
            var started: [String: StartedStep] = [:]
            for var task in try LockedTask.lock(tasksOf: ids, connection) {
                task.node = node
                for id in ids {
                    guard let index = task.index(of: id), (try? task.apply(.start, to: index)) != nil else { continue }
                    task.settle()
                    started[id] = try Self.assignment(of: index, in: task)
                }
                try changes.write(task, connection)
            }
            return started
        }
    }

    static func assignment(of index: Int, in task: LockedTask) throws(EngineError) -> StartedStep {
        let step = task.steps[index]
        var dependencyResults: [String: Google_Protobuf_Struct] = [:]
        for name in step.dependsOn {
            if let dependency = task.index(named: name) {
                // Results recorded in this same transaction are not stored yet.
                let results = task.steps[dependency].results ?? task.steps[dependency].storedResults
                dependencyResults[name] = try Rows.object(results) ?? Google_Protobuf_Struct()
            }
        }
        return StartedStep(
            stepID: step.stepID, taskID: task.taskID, taskName: task.taskName, stepName: step.name, handler: step.handler,
            attempt: step.machine.attempts, context: try Rows.object(task.contextJSON) ?? Google_Protobuf_Struct(),
            dependencyResults: dependencyResults, timeoutSeconds: step.timeoutSeconds)
    }

    /// Records the outcome of attempt `attempt` of a step. A result for a step that is no longer
    /// IN_PROGRESS in that attempt (a duplicate, or a stale one after a timeout) changes nothing
    /// and returns false.
    @discardableResult
    public func finishStep(_ stepID: String, attempt: Int32, outcome: StepOutcome) async throws(EngineError) -> Bool {
        let id = try Self.stepID(stepID)
        return try await finishSteps([(id, attempt, outcome)])[0].get()
    }

    /// Records several outcomes in one transaction, so they share one commit, in the order
    /// given (two of one task as if one after the other). Each answers as `finishStep` would:
    /// false for a stale or duplicate one, INVALID_ARGUMENT for one that cannot be stored (an
    /// annotation without a type), which leaves the others be.
    public func finishSteps(
        _ outcomes: [(stepID: String, attempt: Int32, outcome: StepOutcome)]
    ) async throws(EngineError) -> [Result<Bool, EngineError>] {
        try await finishSteps(outcomes, startingInto: [], node: nil).answers
    }

    /// As `finishSteps`, and the steps the outcomes make ready are started in the same
    /// transaction, into the free worker slots the caller holds (`slots`: each the handlers it
    /// takes and how many), owned by `node`: one commit takes a step from its dependency's
    /// result to its worker, without a round through the queue. Each started step comes back
    /// with the index of the slots it took; the others are ENQUEUED as usual.
    public func finishSteps(
        _ outcomes: [(stepID: String, attempt: Int32, outcome: StepOutcome)],
        startingInto slots: [(handlers: Set<String>, count: Int)], node: String?
    ) async throws(EngineError) -> (answers: [Result<Bool, EngineError>], started: [(step: StartedStep, slot: Int)]) {
        var answers: [Result<Bool, EngineError>] = Array(repeating: .success(false), count: outcomes.count)
        var prepared: [(index: Int, stepID: String, attempt: Int32, outcome: StepOutcome, results: String?,
                        notes: [(type: String, stepName: String, json: String)])] = []
        for (index, item) in outcomes.enumerated() {
            do throws(EngineError) {
                let id = try Self.stepID(item.stepID)
                let checked = try Self.checked(item.outcome)
                prepared.append((index, id, item.attempt, checked.outcome, checked.results, checked.notes))
            } catch {
                answers[index] = .failure(error)
            }
        }
        let ready = prepared
        guard !ready.isEmpty else { return (answers, []) }
        let gate = limitedStarts.withLockedValue { $0 }
        // Places taken for steps with limits, given back should the transaction not commit.
        let taken = NIOLockedValueBox<[LimitedStart]>([])
        let recordedAndStarted: ([Int], [(step: StartedStep, slot: Int)])
        do {
            recordedAndStarted = try await transaction(turning: { connection, changes -> PostgresPool.TransactionTurn<([Int], [(step: StartedStep, slot: Int)])> in
                var recorded: [Int] = []
                var starts = ChainedStarts(into: slots, admitsLimited: gate != nil)
                var tasks = try LockedTask.lock(tasksOf: ready.map(\.stepID), connection)
                for taskIndex in tasks.indices {
                    tasks[taskIndex].node = node
                    for item in ready {
                        guard let index = tasks[taskIndex].index(of: item.stepID), tasks[taskIndex].steps[index].machine.status == .inProgress,
                              tasks[taskIndex].steps[index].machine.attempts == item.attempt
                        else { continue }
                        var outcome = item.outcome
                        var notes = item.notes
                        if let results = item.results,
                           let refusal = try Self.overBudget(results, notes: notes.count, of: index, in: tasks[taskIndex], connection) {
                            // Results that would make the task too large to read back fail the
                            // attempt for good: the same results would fail again.
                            outcome = .failure(message: "the worker's result was refused: \(refusal)", retryable: false, backoffRequestSeconds: 0)
                            notes = []
                        }
                        try Self.record(outcome, attempt: item.attempt, results: item.results, of: index, in: &tasks[taskIndex])
                        for note in notes {
                            let stepName = note.stepName.isEmpty ? tasks[taskIndex].steps[index].name : note.stepName
                            tasks[taskIndex].annotate(stepName: stepName, type: note.type, json: note.json)
                        }
                        tasks[taskIndex].enqueueReady()
                        try starts.startReady(in: &tasks[taskIndex], at: taskIndex)
                        tasks[taskIndex].settle()
                        recorded.append(item.index)
                    }
                }
                guard let gate, !starts.limited.isEmpty else {
                    for task in tasks { try changes.write(task, connection) }
                    return .commit((recorded, starts.started))
                }
                // The steps with limits wait, the tasks locked, for the queue to admit them.
                let (read, setAside, asked, recordedHere) = (tasks, starts, starts.limited.map(\.start), recorded)
                return .await {
                    let admitted = await gate.admitAtOnce(asked)
                    taken.withLockedValue { $0 = asked.filter { admitted.contains($0.stepID) } }
                    return { connection in
                        var (tasks, starts) = (read, setAside)
                        try starts.startAdmitted(admitted, in: &tasks)
                        for index in tasks.indices {
                            tasks[index].settle()
                            try changes.write(tasks[index], connection)
                        }
                        return (recordedHere, starts.started)
                    }
                }
            })
        } catch {
            let unused = taken.withLockedValue { $0 }
            if let gate, !unused.isEmpty { await gate.giveBack(unused) }
            if case .unavailable(let message) = error { throw .unavailable(message) }
            // One outcome the store refused fails the whole transaction: each is recorded
            // alone then, so that the others are not lost with it. One that fails alone too is
            // answered with why, and its attempt is failed by the caller.
            guard ready.count > 1 else {
                answers[ready[0].index] = .failure(.invalidArgument("it could not be stored: \(error)"))
                return (answers, [])
            }
            for item in ready {
                let alone = try await finishSteps([(item.stepID, item.attempt, outcomes[item.index].outcome)], startingInto: [], node: node)
                answers[item.index] = alone.answers[0]
            }
            return (answers, [])
        }
        let (recorded, started) = recordedAndStarted
        for index in recorded { answers[index] = .success(true) }
        return (answers, started)
    }

    /// A worker's outcome as it will be stored: results and annotations within InputLimits
    /// (INVALID_ARGUMENT past them), and a failure's message with no NUL byte and cut, visibly,
    /// at InputLimits.reasonBytes, so that a long stack trace still fails the attempt with
    /// what it says first.
    static func checked(_ outcome: StepOutcome) throws(EngineError)
        -> (outcome: StepOutcome, results: String?, notes: [(type: String, stepName: String, json: String)])
    {
        switch outcome {
        case .success(let values, let annotations):
            let results = try InputCheck.json(values, "results", limit: InputLimits.resultsBytes)
            guard annotations.count <= InputLimits.annotationsPerResult else {
                throw .invalidArgument("the result has \(annotations.count) annotations, over the limit of \(InputLimits.annotationsPerResult)")
            }
            var notes: [(type: String, stepName: String, json: String)] = []
            for (index, note) in annotations.enumerated() {
                try InputCheck.text(note.type, "annotations[\(index)].type", limit: InputLimits.nameBytes)
                guard !note.type.isEmpty else { throw .invalidArgument("an annotation has no type") }
                try InputCheck.text(note.stepName, "annotations[\(index)].step_name", limit: InputLimits.nameBytes)
                notes.append((note.type, note.stepName,
                              try InputCheck.json(note.annotation, "annotations[\(index)].annotation", limit: InputLimits.annotationBytes)))
            }
            return (outcome, results, notes)
        case .failure(let message, let retryable, let requested):
            if let at = InputCheck.nulOffset(message) {
                throw .invalidArgument("the failure message contains a NUL byte (at byte \(at)), which cannot be stored: \(InputCheck.quoted(message))")
            }
            let backoff = min(max(requested, 0), Int32(InputLimits.seconds))
            return (.failure(message: cut(message, to: InputLimits.reasonBytes), retryable: retryable, backoffRequestSeconds: backoff), nil, [])
        case .lost, .timedOut:
            return (outcome, nil, [])
        }
    }

    /// `text` whole when it fits in `limit` bytes; else as much as fits, on a character
    /// boundary, and a note of how much there was.
    static func cut(_ text: String, to limit: Int) -> String {
        let size = text.utf8.count
        guard size > limit else { return text }
        let note = " … [cut: \(size) bytes in all, \(limit) kept]"
        var kept = ""
        var bytes = 0
        for character in text {
            let length = character.utf8.count
            guard bytes + length + note.utf8.count <= limit else { break }
            kept.append(character)
            bytes += length
        }
        return kept + note
    }

    /// Why results (with `notes` annotations) cannot be added to the task, or nil when they can.
    private static func overBudget(
        _ results: String, notes: Int, of index: Int, in task: LockedTask, _ connection: PostgresConnection
    ) throws -> String? {
        let total = task.storedBytes(withResults: results.utf8.count, of: index)
        if total > InputLimits.taskBytes {
            return "results of \(results.utf8.count) bytes would bring the task's stored JSON to \(total) bytes, over the limit of \(InputLimits.taskBytes)"
        }
        if notes > 0, try task.annotationCount(connection) + notes > InputLimits.annotationsPerTask {
            return "the task would have more than \(InputLimits.annotationsPerTask) annotations, the most it keeps"
        }
        return nil
    }

    private static func record(
        _ outcome: StepOutcome, attempt: Int32, results: String?, of index: Int, in task: inout LockedTask
    ) throws(StepStateMachine.Refusal) {
        guard let (message, retryable, requested, counted) = outcome.failure else {
            try task.apply(.succeed, to: index, results: results)
            task.measure(.attemptEnded(handler: task.steps[index].handler, outcome: .success, ranFor: task.steps[index].runningFor))
            return
        }
        do {
            var machine = task.steps[index].machine
            try machine.apply(.fail(retryable: retryable))
            let delay = machine.status == .waitingForRetry
                ? Backoff.delay(attempt: attempt, policy: task.steps[index].backoff, requestedSeconds: requested) : nil
            let error = Rows.stepErrorJSON(message, retryable: retryable, attempt: attempt)
            try task.apply(.fail(retryable: retryable), to: index, error: error, retryIn: delay)
            task.measure(.attemptEnded(handler: task.steps[index].handler, outcome: counted, ranFor: task.steps[index].runningFor))
        }
    }

    /// Retries that have fallen due, and first steps of delayed tasks whose start has come, in
    /// every task, go to the queue. Returns how many.
    @discardableResult
    public func enqueueDueRetries(limit: Int = 500) async throws(EngineError) -> Int {
        let tasks = try await read { connection in
            try connection.query(
                """
                SELECT task_id::text AS task_id FROM steps
                WHERE status = \(StepStatus.waitingForRetry.rawValue) AND next_attempt_at <= now()
                UNION
                SELECT task_id::text FROM steps
                WHERE status = \(StepStatus.pending.rawValue) AND unmet_dependencies = 0 AND next_attempt_at <= now()
                LIMIT $1
                """, [String(limit)]
            ).compactMap { $0["task_id"] }
        }
        return try await enqueueReady(inTasks: tasks)
    }

    /// Enqueues what is ready in each of the tasks, a transaction each; returns how many steps.
    func enqueueReady(inTasks taskIDs: [String]) async throws(EngineError) -> Int {
        var count = 0
        for taskID in taskIDs {
            count += try await transaction { connection, changes in
                guard var task = try LockedTask.lock(taskID, connection) else { return 0 }
                task.enqueueReady()
                return try changes.write(task, connection).filter { $0.status == .enqueued }.count
            }
        }
        return count
    }

    // MARK: Shared steps of a transition

    static func stepID(_ text: String) throws(EngineError) -> String {
        guard let id = UUID(uuidString: text) else { throw .invalidArgument("step_id \(InputCheck.quoted(text)) is not a UUID") }
        return id.uuidString.lowercased()
    }
}
