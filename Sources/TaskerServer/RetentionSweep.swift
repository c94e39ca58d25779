import Logging
import ServiceLifecycle
import TaskerEngine

/// `--retention`: every interval, finished tasks older than the limit are deleted, a batch at a
/// time; one node prunes at once, the others find it taken and wait for the next round.
struct RetentionSweep: Service {
    let engine: TaskEngine
    let criteria: PruneCriteria
    let interval: Duration
    let logger: Logger

    /// Prunes, then waits an interval, until graceful shutdown, which ends a prune underway
    /// after its batch.
    func run() async {
        repeat {
            do {
                let pruned = try await cancelWhenGracefulShutdown { [engine, criteria] in try await engine.prune(criteria) }
                if pruned > 0 {
                    logger.info("pruned finished tasks", metadata: ["count": .stringConvertible(pruned), "older_than_seconds": .stringConvertible(criteria.olderThan)])
                }
            } catch {
                logger.warning("pruning failed", metadata: ["error": .string("\(error)")])
            }
        } while (try? await cancelWhenGracefulShutdown({ try await Task.sleep(for: interval) })) != nil
    }
}
