import Foundation
import NIOConcurrencyHelpers
import TaskerDispatch
import TaskerEngine
import TaskerProto
import TaskerQueue
import TaskerWorker
import Testing

/// What crosses nodes or outlives a lost message: calling off an attempt on another node, a
/// retry whose entry Redis lost, and a worker's heartbeats while it is idle or busy.
@Suite(.timeLimit(.minutes(3))) struct RecoveryTests {
    @Test func cancellingATaskOnOneNodeCallsOffItsAttemptOnAnother() async throws {
        let harness = try await DispatchHarness(nodes: 2)
        try await harness.register(template("long", [step("wait")]))
        let calledOff = NIOLockedValueBox<Date?>(nil)
        try await harness.worker(on: 1) { worker in
            worker.handle("wait") { _ in
                do {
                    try await Task.sleep(for: .seconds(60))
                } catch {
                    calledOff.withLockedValue { $0 = Date() }
                    throw error
                }
                return StepOutput()
            }
        }
        let task = try await harness.submit("long", on: 0)
        try await eventually("the step runs on node 1") { try await harness.task(task.taskID).steps[0].status == .inProgress }
        let cancelled = Date()
        _ = try await harness.nodes[0].engine.cancelTask(task.taskID, reason: "no longer wanted")
        try await eventually("node 1's worker was sent CancelStep", within: 5) { calledOff.withLockedValue { $0 } != nil }
        let after = try #require(calledOff.withLockedValue { $0 }).timeIntervalSince(cancelled)
        #expect(after < 2, "called off \(after) s after the cancellation")
        let read = try await harness.task(task.taskID)
        #expect(read.status == .cancelled && read.steps[0].status == .cancelled)
        await harness.stop()
    }

    @Test func aRetryWhoseQueueEntryRedisLostStillRuns() async throws {
        let harness = try await DispatchHarness()
        try await harness.register(template("twice", [step("flaky", backoff: 0.5)]))
        let lane = RedisLane(url: try RedisURL(parsing: harness.redis.url))
        try await harness.worker { worker in
            worker.handle("flaky") { step in
                if step.attempt == 1 {
                    throw StepFailure.retryable("once")
                }
                return StepOutput()
            }
        }
        let task = try await harness.submit("twice")
        try await eventually("the step waits for its retry") { try await harness.task(task.taskID).steps[0].status == .waitingForRetry }
        // Redis forgets the retry before it falls due.
        _ = try await lane.command(["DEL", StepQueue.retriesKey])
        let done = try await harness.finished(task.taskID, within: 20)
        #expect(done.status == .complete && done.steps[0].attempts == 2)
        await lane.shutdown()
        await harness.stop()
    }

    /// With heartbeats every 0.5 s (and 3 missed allowed), a worker idle for 2.5 s and one
    /// busy with a step for 2.5 s both stay connected: the step runs once.
    @Test func anSDKWorkerIdleOrBusyForLongerThanItsAllowanceStaysConnected() async throws {
        let harness = try await DispatchHarness()
        try await harness.register(template("slow", [step("slow")]))
        let worker = try await harness.worker { worker in
            worker.handle("slow") { _ in
                try await Task.sleep(for: .milliseconds(2500))
                return StepOutput()
            }
        }
        try await Task.sleep(for: .milliseconds(2500))  // idle: the time itself is what is tested
        #expect(worker.isConnected && worker.registrations == 1, "never dropped while idle")
        let task = try await harness.finished(try await harness.submit("slow").taskID)
        #expect(task.status == .complete && task.steps[0].attempts == 1, "run once: the busy worker was never lost")
        #expect(worker.isConnected && worker.registrations == 1, "never dropped while busy")
        #expect(worker.stepsRun == 1)
        await harness.stop()
    }
}
