import TaskerMetrics
import TaskerProto

/// What a transaction measured, kept with its transitions and reported to swift-metrics only
/// once it has committed: a rolled-back transaction counts nothing.
enum EngineMeasurement: Sendable {
    /// A step went IN_PROGRESS after waiting `queuedFor` seconds ENQUEUED.
    case started(handler: String, queuedFor: Double)
    /// An attempt ended; `ranFor` is nil when its start is not known.
    case attemptEnded(handler: String, outcome: AttemptOutcome, ranFor: Double?)
    /// A task reached `status`, `after` seconds from its submission.
    case taskFinished(template: String, status: TaskStatus, after: Double)

    func report() {
        switch self {
        case .started(let handler, let queuedFor):
            TaskerMetric.stepQueueWait(handler).recordSeconds(max(queuedFor, 0))
        case .attemptEnded(let handler, let outcome, let ranFor):
            TaskerMetric.stepAttempts(handler, outcome.rawValue).increment()
            if let ranFor, outcome.isTheWorkers { TaskerMetric.stepRun(handler).recordSeconds(max(ranFor, 0)) }
        case .taskFinished(let template, let status, let after):
            TaskerMetric.tasksFinished(template, Self.label(status)).increment()
            TaskerMetric.taskDuration(template).recordSeconds(max(after, 0))
        }
    }

    private static func label(_ status: TaskStatus) -> String {
        switch status {
        case .complete: "complete"
        case .error: "error"
        case .cancelled: "cancelled"
        case .resolvedManually: "resolved_manually"
        default: "unspecified"
        }
    }
}

/// How an attempt ended, as `tasker_step_attempts_total` labels it.
public enum AttemptOutcome: String, Sendable {
    case success
    case retryableFailure = "retryable_failure"
    case permanentFailure = "permanent_failure"
    /// Its worker or node went away, or it was lost on the way.
    case lost
    /// It ran past its step's timeout.
    case timedOut = "timed_out"

    /// Whether the worker reported it, so that its run time is the step's.
    var isTheWorkers: Bool {
        self == .success || self == .retryableFailure || self == .permanentFailure
    }
}
