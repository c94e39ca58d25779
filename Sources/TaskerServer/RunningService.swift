import Logging
import ServiceLifecycle

/// A `Service` running in a `ServiceGroup` of its own, until it is asked to stop: the node's
/// hold on a component whose life is its `run()`.
struct RunningService: Sendable {
    private let group: ServiceGroup
    private let running: Task<Void, any Error>

    private init(group: ServiceGroup, running: Task<Void, any Error>) {
        self.group = group
        self.running = running
    }

    static func start(_ service: some Service, logger: Logger) -> RunningService {
        let group = ServiceGroup(configuration: .init(services: [service], gracefulShutdownSignals: [], logger: logger))
        return RunningService(group: group, running: Task { try await group.run() })
    }

    /// Shuts the service down gracefully and waits until its `run()` has returned.
    func stop() async {
        await group.triggerGracefulShutdown()
        _ = await running.result
    }
}
