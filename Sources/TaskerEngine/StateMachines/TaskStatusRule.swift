import TaskerProto

/// A task's status follows from its steps' (DESIGN §3).
public enum TaskStatusRule {
    /// The status of a task whose steps are in `steps` (readiness already applied, so a PENDING
    /// step left is one still waiting on its dependencies).
    public static func status(of steps: [StepStatus], cancelled: Bool) -> TaskStatus {
        if cancelled { return .cancelled }
        if steps.allSatisfy({ [.complete, .skipped, .resolvedManually].contains($0) }) { return .complete }
        let moving = steps.contains { [.enqueued, .inProgress, .waitingForRetry].contains($0) }
        if steps.contains(.error), !moving { return .error }
        // Dispatched: a worker has taken a step at least once (ENQUEUED is still waiting).
        let dispatched = steps.contains { ![.pending, .skipped, .enqueued].contains($0) }
        return dispatched ? .inProgress : .pending
    }

    /// Finished: nothing moves any more without RetryStep.
    public static func isFinished(_ status: TaskStatus) -> Bool {
        [.complete, .error, .cancelled, .resolvedManually].contains(status)
    }
}
