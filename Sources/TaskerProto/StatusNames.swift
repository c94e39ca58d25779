/// The statuses as the wire contract spells them (`RESOLVED_MANUALLY`), for every message a
/// person reads, rather than Swift's case names.
extension Tasker_V1_TaskStatus {
    public var contractName: String {
        switch self {
        case .pending: "PENDING"
        case .inProgress: "IN_PROGRESS"
        case .complete: "COMPLETE"
        case .error: "ERROR"
        case .cancelled: "CANCELLED"
        case .resolvedManually: "RESOLVED_MANUALLY"
        default: "UNSPECIFIED"
        }
    }
}

extension Tasker_V1_StepStatus {
    public var contractName: String {
        switch self {
        case .pending: "PENDING"
        case .enqueued: "ENQUEUED"
        case .inProgress: "IN_PROGRESS"
        case .complete: "COMPLETE"
        case .error: "ERROR"
        case .waitingForRetry: "WAITING_FOR_RETRY"
        case .cancelled: "CANCELLED"
        case .resolvedManually: "RESOLVED_MANUALLY"
        case .skipped: "SKIPPED"
        default: "UNSPECIFIED"
        }
    }
}
