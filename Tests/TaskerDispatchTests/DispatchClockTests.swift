import Foundation
import TaskerDispatch
import TaskerProto
import Testing

/// Dispatch's time is its clock's: with a clock the test moves, a worker's silence and a
/// step's timeout count only as far as the clock has gone, however long the test waits.
@Suite(.timeLimit(.minutes(2))) struct DispatchClockTests {
    @Test func aSilentWorkerIsCutOffWhenTheClockPassesItsAllowanceAndNotBefore() async throws {
        let clock = ManualUnixClock(at: Date().timeIntervalSince1970)
        let harness = try await DispatchHarness { $0.dispatchClock = clock }
        var silent = try await RawWorker(port: harness.nodes[0].server.port)
        _ = try await silent.register(["work"])
        // Past its allowance of 3 intervals of 0.5 s in real time, but not by the clock.
        try await Task.sleep(for: .seconds(2))
        #expect(await harness.nodes[0].dispatcher?.connectedWorkers == 1)
        // Silence is looked for every quarter of a second by the clock: at 1.5 s, then 1.75 s.
        clock.advance(by: .seconds(1.5))
        try await Task.sleep(for: .milliseconds(300))
        #expect(await harness.nodes[0].dispatcher?.connectedWorkers == 1, "1.5 s of silence is not more than its allowance")
        clock.advance(by: .seconds(0.25))
        let ending = await silent.ending()
        #expect(ending?.code == .unavailable && ending?.message.contains("heartbeat") == true)
        await silent.close()
        await harness.stop()
    }

    @Test func anAttemptPastItsTimeoutByTheClockIsCalledOffAsTimedOut() async throws {
        let start = Date().timeIntervalSince1970
        let clock = ManualUnixClock(at: start)
        let harness = try await DispatchHarness { $0.dispatchClock = clock }
        try await harness.register(template("slow", [step("slow", backoff: 0.1, timeout: 1)]))
        var worker = try await RawWorker(port: harness.nodes[0].server.port)
        _ = try await worker.register(["slow"])
        let task = try await harness.submit("slow")
        let assignment = try await worker.assignment()
        #expect(abs(assignment.deadline.timeIntervalSince1970 - (start + 1)) < 0.001, "the deadline is the clock's time plus the timeout")
        try await Task.sleep(for: .seconds(1.5))
        #expect(try await harness.task(task.taskID).steps[0].status == .inProgress, "1.5 s have passed, but not by the clock")
        clock.advance(by: .seconds(1.1))
        guard case .cancel(let cancel) = try await worker.responses.next()?.kind else {
            Issue.record("expected CancelStep")
            return
        }
        #expect(cancel.stepID == assignment.stepID && cancel.attempt == assignment.attempt && cancel.reason == "timed out after 1 s")
        worker.call.cancel()
        await worker.close()
        await harness.stop()
    }
}
