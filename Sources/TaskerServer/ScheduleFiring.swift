import Logging
import ServiceLifecycle
import TaskerEngine

/// Fires the schedules whose time has come. Every node runs one: a firing makes one task however
/// many nodes fire it (see TaskEngine's schedules). It waits until the next firing, but no more
/// than `longestWait`, so that a schedule created on another node is seen soon.
struct ScheduleFiring: Service {
    let engine: TaskEngine
    let logger: Logger
    var longestWait: Duration = .seconds(1)

    func run() async {
        while true {
            var wait = longestWait
            do {
                let (made, nextIn) = try await cancelWhenGracefulShutdown { [engine] in try await engine.fireDueSchedules() }
                if made > 0 { logger.debug("schedules fired", metadata: ["tasks": .stringConvertible(made)]) }
                if let nextIn { wait = min(wait, .milliseconds(Int(nextIn * 1000) + 1)) }
            } catch is CancellationError {
                return
            } catch {
                logger.warning("schedules not fired", metadata: ["error": .string("\(error)")])
            }
            guard (try? await cancelWhenGracefulShutdown({ [wait] in try await Task.sleep(for: wait) })) != nil else { return }
        }
    }
}
