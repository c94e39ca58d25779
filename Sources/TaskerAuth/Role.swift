/// What a token may call. Each role includes the ones before it, except `worker`, which may
/// only connect as a worker.
public enum Role: String, Sendable, CaseIterable {
    case viewer, submitter, worker, admin

    /// Whether a token of this role may call a method that needs `required`.
    public func permits(_ required: Role) -> Bool {
        switch (self, required) {
        case (.admin, _): true
        case (.worker, .worker): true
        case (.worker, _), (_, .worker): false
        case (.submitter, .viewer), (.submitter, .submitter), (.viewer, .viewer): true
        default: false
        }
    }

    /// The role a method needs; nil for the methods open to all (health).
    public static func required(for path: String) -> Role? {
        if path.hasPrefix("/grpc.health.v1.Health/") { return nil }
        if let role = methods[path] { return role }
        if path.hasPrefix("/grpc.reflection.") { return .viewer }
        // Anything else (the Admin service, a method added later) needs the most.
        return .admin
    }

    private static let methods: [String: Role] = [
        "/tasker.v1.Tasker/GetTask": .viewer,
        "/tasker.v1.Tasker/ListTasks": .viewer,
        "/tasker.v1.Tasker/ListTaskTemplates": .viewer,
        "/tasker.v1.Tasker/StreamStepUpdates": .viewer,
        "/tasker.v1.Tasker/ListWorkers": .viewer,
        "/tasker.v1.Tasker/ListQueues": .viewer,
        "/tasker.v1.Tasker/ListSchedules": .viewer,
        "/tasker.v1.Tasker/SubmitTask": .submitter,
        "/tasker.v1.Tasker/CancelTask": .submitter,
        "/tasker.v1.Tasker/RetryStep": .submitter,
        "/tasker.v1.Tasker/ResolveStep": .submitter,
        "/tasker.v1.Tasker/RegisterTaskTemplate": .submitter,
        "/tasker.v1.Tasker/CreateSchedule": .submitter,
        "/tasker.v1.Tasker/DeleteSchedule": .submitter,
        "/tasker.v1.Tasker/SetSchedulePaused": .submitter,
        "/tasker.v1.Workers/Connect": .worker,
    ]
}
