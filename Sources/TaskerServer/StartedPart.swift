import ServiceLifecycle

/// A part that is started before its group runs, because what comes after needs it ready (a
/// pool migrated, a port bound, a queue subscribed): its life in the group is to be held until
/// the group shuts down, then stopped, in the group's reverse order.
public struct StartedPart: Service {
    private let stop: @Sendable () async -> Void

    public init(stop: @escaping @Sendable () async -> Void) {
        self.stop = stop
    }

    public func run() async {
        // Graceful shutdown returns; a cancelled group throws: either way the part stops.
        try? await gracefulShutdown()
        await stop()
    }
}
