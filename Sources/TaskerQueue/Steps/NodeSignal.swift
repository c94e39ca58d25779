/// What one node tells the others on the signals channel (`StepQueue.publish`). Pub/sub keeps
/// nothing, so a signal only hurries along what the sweeper would do anyway; a text that is not
/// a signal is ignored by the node that reads it.
public enum NodeSignal: Sendable, Equatable {
    /// The attempt is over (its task was cancelled, or it ran past its timeout): the node whose
    /// worker holds it sends that worker CancelStep with `reason` and frees the slot.
    case callOff(stepID: String, attempt: Int32, reason: String)

    /// The wire form: `cancel <step id> <attempt> <reason>`. The reason is last and may hold
    /// spaces; a node of an earlier version sends none, and is read as a cancelled task.
    public var encoded: String {
        switch self {
        case .callOff(let stepID, let attempt, let reason): "cancel \(stepID) \(attempt) \(reason)"
        }
    }

    /// The reason of an attempt called off because its task was cancelled.
    public static let cancelledTask = "the task was cancelled"

    public init?(decoding text: String) {
        let parts = text.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false)
        guard parts.count >= 3, parts[0] == "cancel", !parts[1].isEmpty, let attempt = Int32(parts[2]) else { return nil }
        let reason = parts.count == 4 && !parts[3].isEmpty ? String(parts[3]) : Self.cancelledTask
        self = .callOff(stepID: String(parts[1]), attempt: attempt, reason: reason)
    }
}
