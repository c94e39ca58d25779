import NIOConcurrencyHelpers
import TaskerProto
import TaskerStore

/// A transition as the rest of the system learns of it once its transaction has committed:
/// what dispatch acts on (a step to queue, a retry to schedule, an attempt to call off) and
/// what a watcher is shown.
public struct StepChange: Sendable, Equatable {
    public let taskID: String
    /// The transition's place in its task's gapless history.
    public let sequence: Int
    /// nil for a transition of the task alone.
    public let stepID: String?
    public let stepName: String
    public let status: StepStatus
    public let previous: StepStatus
    public let attempt: Int32
    public let taskStatus: TaskStatus
    public let resultsJSON: String?
    public let errorJSON: String?
    /// The handler of a step that went ENQUEUED.
    public let handler: String?
    /// When a step that went WAITING_FOR_RETRY falls due (Unix seconds).
    public let retryAt: Double?
    /// The task's priority, 1 (first) … 5 (last): the queue a step that went ENQUEUED joins.
    public let priority: Int
    /// The step's concurrency limit, if it has one: what dispatch takes a place of before it
    /// starts an attempt, and gives back when the attempt ends.
    public let concurrency: StepConcurrency?
    /// The step's rate limits, if it has any: what dispatch spends of before it starts an attempt.
    public let rateLimits: StepRateLimits?
}

/// A step's concurrency limit, as its task made it.
public struct StepConcurrency: Sendable, Equatable, Hashable {
    public let key: String
    public let maxRunning: Int

    public init(key: String, maxRunning: Int) {
        self.key = key
        self.maxRunning = maxRunning
    }

    /// From the stored columns; nil without a limit.
    init?(key: String?, maxRunning: Int?) {
        guard let key, let maxRunning else { return nil }
        self.init(key: key, maxRunning: maxRunning)
    }
}

/// A first step of a task submitted to start later: it waits PENDING, without a transition,
/// until `at` (Unix seconds).
public struct DelayedStep: Sendable, Equatable {
    public let stepID: String
    public let at: Double
}

/// Told of every committed transition, in commit order per task.
public protocol StepChangeObserver: Sendable {
    func stepsChanged(_ changes: [StepChange]) async
    /// Steps that become ready later with no transition now: the first steps of a delayed task.
    func stepsDelayed(_ steps: [DelayedStep]) async
}

extension StepChangeObserver {
    public func stepsDelayed(_ steps: [DelayedStep]) async {}
}

/// The transitions one transaction makes, handed on only once it has committed. It is filled
/// on the pool thread running the transaction and read after that thread is done with it.
final class ChangeSet: @unchecked Sendable {
    private(set) var changes: [StepChange] = []
    private(set) var measurements: [EngineMeasurement] = []
    /// First steps of limited tasks given a place when a task of their key finished.
    private(set) var delayed: [DelayedStep] = []

    /// Writes what the transaction did to `task`, keeping its transitions and measurements
    /// for after the commit; a finished task's place goes to the next waiting for it. Returns
    /// the transitions.
    @discardableResult
    func write(_ task: LockedTask, _ connection: PostgresConnection) throws -> [StepChange] {
        let written = try task.write(connection)
        changes += written
        measurements += task.measurements
        if task.freesPlace, let key = task.concurrencyKey {
            delayed += try TaskEngine.admitWaitingTasks(key: key, connection).steps
        }
        return written
    }
}

/// The observers an engine tells; set while the server starts.
final class StepChangeObservers: Sendable {
    private let observers = NIOLockedValueBox<[any StepChangeObserver]>([])

    func add(_ observer: any StepChangeObserver) {
        observers.withLockedValue { $0.append(observer) }
    }

    func tell(_ changes: [StepChange], delayed: [DelayedStep] = []) async {
        guard !changes.isEmpty || !delayed.isEmpty else { return }
        for observer in observers.withLockedValue({ $0 }) {
            if !changes.isEmpty { await observer.stepsChanged(changes) }
            if !delayed.isEmpty { await observer.stepsDelayed(delayed) }
        }
    }
}
