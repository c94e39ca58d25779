import Logging
import NIOConcurrencyHelpers
import TaskerEngine

/// `--retention`: every interval, finished tasks older than the limit are deleted, a batch at a
/// time; one node prunes at once, the others find it taken and wait for the next round.
final class RetentionSweep: Sendable {
    private let running: Task<Void, Never>

    init(engine: TaskEngine, criteria: PruneCriteria, every interval: Duration, logger: Logger) {
        running = Task {
            while !Task.isCancelled {
                do {
                    let pruned = try await engine.prune(criteria)
                    if pruned > 0 {
                        logger.info("pruned finished tasks", metadata: ["count": .stringConvertible(pruned), "older_than_seconds": .stringConvertible(criteria.olderThan)])
                    }
                } catch {
                    if !Task.isCancelled { logger.warning("pruning failed", metadata: ["error": .string("\(error)")]) }
                }
                try? await Task.sleep(for: interval)
            }
        }
    }

    func stop() async {
        running.cancel()
        await running.value
    }
}
