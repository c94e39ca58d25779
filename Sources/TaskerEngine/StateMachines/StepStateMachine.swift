import TaskerProto

public typealias StepStatus = Tasker_V1_StepStatus
public typealias TaskStatus = Tasker_V1_TaskStatus

/// The lifecycle of one step (DESIGN §3). A value: the engine loads it from the store, applies
/// one event, and writes the result back with a conditional update on the state it loaded.
public struct StepStateMachine: Equatable, Sendable {
    public enum Event: Hashable, Sendable {
        /// Its dependencies are met (or its retry fell due): it goes to the queue.
        case enqueue
        /// A worker took it: a new attempt starts.
        case start
        case succeed
        /// The attempt failed; `retryable` is the handler's word, the step's own setting and
        /// the attempts left decide the rest.
        case fail(retryable: Bool)
        /// Its task was cancelled.
        case cancel
        /// It waited ENQUEUED past its schedule-to-start limit: an attempt that never started,
        /// failed retryably.
        case expire
        /// RetryStep on a step in ERROR: attempts start again.
        case retry
        /// ResolveStep: done by hand.
        case resolve
    }

    public struct Refusal: Error, Equatable, CustomStringConvertible {
        public let status: StepStatus
        public let event: Event
        public var description: String { "a step in \(status) cannot \(event)" }
    }

    public private(set) var status: StepStatus
    public private(set) var attempts: Int32
    public let retryLimit: Int32
    public let retryable: Bool

    public init(status: StepStatus, attempts: Int32, retryLimit: Int32, retryable: Bool) {
        self.status = status
        self.attempts = attempts
        self.retryLimit = retryLimit
        self.retryable = retryable
    }

    /// Finished for good: nothing but nothing moves it.
    public var isFinished: Bool {
        [.complete, .skipped, .resolvedManually, .cancelled].contains(status)
    }

    /// Lets the steps that depend on it run.
    public var satisfiesDependents: Bool {
        [.complete, .skipped, .resolvedManually].contains(status)
    }

    /// Applies `event`; returns the new status or refuses, leaving the value as it was.
    @discardableResult
    public mutating func apply(_ event: Event) throws(Refusal) -> StepStatus {
        switch (status, event) {
        case (.pending, .enqueue), (.waitingForRetry, .enqueue):
            status = .enqueued
        case (.enqueued, .start):
            status = .inProgress
            attempts += 1
        case (.inProgress, .succeed):
            status = .complete
        case (.inProgress, .fail(let retryableFailure)):
            status = retryableFailure && retryable && attempts < retryLimit ? .waitingForRetry : .error
        case (.enqueued, .expire):
            attempts += 1
            status = retryable && attempts < retryLimit ? .waitingForRetry : .error
        case (.pending, .cancel), (.enqueued, .cancel), (.inProgress, .cancel), (.waitingForRetry, .cancel):
            status = .cancelled
        case (.error, .retry):
            status = .pending
            attempts = 0
        case (.pending, .resolve), (.enqueued, .resolve), (.inProgress, .resolve), (.waitingForRetry, .resolve),
             (.error, .resolve):
            status = .resolvedManually
        default:
            throw Refusal(status: status, event: event)
        }
        return status
    }
}
