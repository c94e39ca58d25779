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

extension TaskEngine {
    /// A worker takes an ENQUEUED step: a new attempt starts, owned by `node`, and the task is
    /// IN_PROGRESS. Returns what the worker needs to run it, or nil when the step was not
    /// ENQUEUED (taken already, or cancelled): nothing changes then.
    public func startStep(_ stepID: String, node: String? = nil) async throws(EngineError) -> StartedStep? {
        let id = try Self.stepID(stepID)
        return try await transaction { connection, changes -> StartedStep? in
            guard var task = try LockedTask.lock(taskOf: id, connection), let index = task.index(of: id),
                  (try? task.apply(.start, to: index)) != nil
            else { return nil }
            task.node = node
            task.settle()
            changes.append(contentsOf: try task.write(connection))
            let step = task.steps[index]
            var dependencyResults: [String: Google_Protobuf_Struct] = [:]
            for name in step.dependsOn {
                if let dependency = task.index(named: name) {
                    dependencyResults[name] = Rows.object(task.steps[dependency].storedResults) ?? Google_Protobuf_Struct()
                }
            }
            return StartedStep(
                stepID: id, taskID: task.taskID, taskName: task.taskName, stepName: step.name, handler: step.handler,
                attempt: step.machine.attempts, context: Rows.object(task.contextJSON) ?? Google_Protobuf_Struct(),
                dependencyResults: dependencyResults, timeoutSeconds: step.timeoutSeconds)
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
            guard var task = try LockedTask.lock(taskOf: id, connection), let index = task.index(of: id),
                  task.steps[index].machine.status == .inProgress, task.steps[index].machine.attempts == attempt
            else { return false }
            switch outcome {
            case .success:
                try task.apply(.succeed, to: index, results: resultsJSON)
            case .failure(let message, let retryable, let requested):
                var machine = task.steps[index].machine
                try machine.apply(.fail(retryable: retryable))
                let delay = machine.status == .waitingForRetry
                    ? Backoff.delay(attempt: attempt, policy: task.steps[index].backoff, requestedSeconds: requested) : nil
                let error = try Rows.json(Google_Protobuf_Struct(fields: [
                    "message": .init(stringValue: message), "retryable": .init(boolValue: retryable),
                    "attempt": .init(numberValue: Double(attempt)), "at": .init(numberValue: Date().timeIntervalSince1970),
                ]))
                try task.apply(.fail(retryable: retryable), to: index, error: error, retryIn: delay)
            }
            for (type, stepName, json) in annotationsJSON {
                task.annotate(stepName: stepName.isEmpty ? task.steps[index].name : stepName, type: type, json: json)
            }
            task.enqueueReady()
            task.settle()
            changes.append(contentsOf: try task.write(connection))
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
        return try await enqueueReady(inTasks: tasks)
    }

    /// Enqueues what is ready in each of the tasks, a transaction each; returns how many steps.
    func enqueueReady(inTasks taskIDs: [String]) async throws(EngineError) -> Int {
        var count = 0
        for taskID in taskIDs {
            count += try await transaction { connection, changes in
                guard var task = try LockedTask.lock(taskID, connection) else { return 0 }
                task.enqueueReady()
                let written = try task.write(connection)
                changes.append(contentsOf: written)
                return written.filter { $0.status == .enqueued }.count
            }
        }
        return count
    }

    // MARK: Shared steps of a transition

    static func stepID(_ text: String) throws(EngineError) -> String {
        guard let id = UUID(uuidString: text) else { throw .invalidArgument("step_id '\(text)' is not a UUID") }
        return id.uuidString.lowercased()
    }
}
