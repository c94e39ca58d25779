import TaskerProto

/// What a watcher has been sent, per task, so that it sees each task's updates in order with
/// no gap and no duplicate whatever order they arrive in: an update from another node can
/// overtake an earlier one, or be missed, and the stored history fills in what is missing.
/// A value with no I/O; the stream that owns it does the reading and sending.
public struct UpdateOrder: Sendable {
    public enum Admission: Equatable, Sendable {
        /// The next update of its task: send it.
        case deliver
        /// Sent already, or of a task this watcher does not follow: drop it.
        case duplicate
        /// Updates after `after` and before `before` were not seen: read them from the stored
        /// history and send them first.
        case gap(after: UInt64, before: UInt64)
    }

    /// Per task, the sequence expected next.
    private var next: [String: UInt64]
    private let followsEveryTask: Bool
    /// Tasks followed, oldest first, so a watcher of every task keeps a bounded memory.
    private var remembered: [String] = []
    private var oldest = 0
    private let memory: Int

    /// Following one task, from after `sequence`.
    public init(task taskID: String, after sequence: UInt64) {
        next = [taskID: sequence + 1]
        followsEveryTask = false
        memory = 1
    }

    /// Following every task live: a task's first update seen is where it starts. Up to
    /// `memory` tasks are remembered; one forgotten starts again from its next update seen.
    public init(everyTask memory: Int = 10_000) {
        next = [:]
        followsEveryTask = true
        self.memory = max(memory, 1)
    }

    /// The sequence expected next for the task, if it is followed.
    public func expected(_ taskID: String) -> UInt64? { next[taskID] }

    public func admit(_ update: Tasker_V1_StepUpdate) -> Admission {
        guard let expected = next[update.taskID] else { return followsEveryTask ? .deliver : .duplicate }
        if update.sequence < expected { return .duplicate }
        if update.sequence > expected { return .gap(after: expected - 1, before: update.sequence) }
        return .deliver
    }

    /// The update was sent.
    public mutating func delivered(_ update: Tasker_V1_StepUpdate) {
        if next.updateValue(update.sequence + 1, forKey: update.taskID) == nil, followsEveryTask {
            remembered.append(update.taskID)
            if remembered.count - oldest > memory {
                next[remembered[oldest]] = nil
                oldest += 1
                if oldest > memory {
                    remembered.removeFirst(oldest)
                    oldest = 0
                }
            }
        }
    }
}
