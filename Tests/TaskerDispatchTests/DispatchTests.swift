import Foundation
import NIOConcurrencyHelpers
import SwiftProtobuf
import TaskerDispatch
import TaskerEngine
import TaskerProto
import TaskerDev
import TaskerQueue
import TaskerServer
import TaskerStore
import TaskerRPC
import TaskerWorker
import Testing

let diamond = template("diamond", [step("a"), step("b", dependsOn: ["a"]), step("c", dependsOn: ["a"]), step("d", dependsOn: ["b", "c"])])

@Suite(.timeLimit(.minutes(3))) struct DispatchTests {
    @Test func aDiamondRunsOverTwoWorkersWithItsDependenciesResults() async throws {
        let harness = try await DispatchHarness()
        let seen = NIOLockedValueBox<[String: StepContext]>([:])
        for name in ["one", "two"] {
            try await harness.worker(name: name, templates: name == "one" ? [diamond] : []) { worker in
                for handler in ["a", "b", "c", "d"] {
                    worker.handle(handler) { step in
                        seen.withLockedValue { $0[step.stepName] = step }
                        return results(#"{"by": "\#(step.stepName)", "n": \#(step.stepName.unicodeScalars.first!.value)}"#)
                    }
                }
            }
        }
        var tasks: [Tasker_V1_Task] = []
        for index in 0..<4 { tasks.append(try await harness.submit("diamond", context: #"{"order": \#(index)}"#)) }
        for task in tasks {
            let done = try await harness.finished(task.taskID)
            #expect(done.status == .complete)
            #expect(done.steps.allSatisfy { $0.status == .complete && $0.attempts == 1 })
            let history = try await harness.history(task.taskID)
            for name in ["a", "b", "c", "d"] {
                #expect(history.filter { $0.step == name && $0.status == .complete }.count == 1, "one COMPLETE for \(name)")
                #expect(history.filter { $0.step == name && $0.status == .inProgress }.count == 1, "one start for \(name)")
            }
        }
        let d = try #require(seen.withLockedValue { $0["d"] })
        #expect(d.dependencyResults.keys.sorted() == ["b", "c"])
        #expect(d.dependencyResults["b"]?.fields["by"]?.stringValue == "b")
        #expect(d.dependencyResults["c"]?.fields["n"]?.numberValue == 99)
        #expect(d.context.fields["order"] != nil)
        #expect(d.taskName == "diamond" && d.handler == "d" && d.attempt == 1)
        await harness.stop()
    }

    @Test func aStepUnblockedByAResultGoesStraightToAFreeWorker() async throws {
        let harness = try await DispatchHarness()
        try await harness.register(template("chain", [step("first"), step("second", dependsOn: ["first"]), step("third", dependsOn: ["second"])]))
        try await harness.worker(slots: 2) { worker in
            for handler in ["first", "second", "third"] {
                worker.handle(handler) { step in results(#"{"from": "\#(step.stepName)"}"#) }
            }
        }
        let task = try await harness.finished(try await harness.submit("chain").taskID)
        #expect(task.status == .complete)
        #expect(try await harness.entriesAdded(["first", "second", "third"]) == ["first": 1, "second": 0, "third": 0],
                "only the root went through the queue")
        let history = try await harness.history(task.taskID)
        #expect(history.filter { $0.status == .inProgress }.count == 3)
        await harness.stop()
    }

    @Test func retriesBackOffAPermanentFailureIsFinalAndABackoffRequestIsHonoured() async throws {
        let harness = try await DispatchHarness()
        try await harness.register(template("flaky", [step("flaky", backoff: 0.3)]))
        try await harness.register(template("doomed", [step("doomed")]))
        try await harness.register(template("throttled", [step("throttled", backoff: 0.1)]))
        try await harness.worker { worker in
            worker.handle("flaky") { step in
                if step.attempt < 3 { throw StepFailure.retryable("attempt \(step.attempt) failed") }
                return results(#"{"ok": true}"#)
            }
            worker.handle("doomed") { _ in throw StepFailure.permanent("card declined") }
            worker.handle("throttled") { step in
                if step.attempt == 1 { throw StepFailure.retryable("429", backoffSeconds: 1) }
                return StepOutput()
            }
        }
        let flaky = try await harness.finished(try await harness.submit("flaky").taskID)
        #expect(flaky.status == .complete && flaky.steps[0].attempts == 3)
        let waits = retryWaits(try await harness.history(flaky.taskID))
        #expect(waits.count == 2)
        // Never early; late by no more than a second of retry polling and dispatch on a busy machine.
        #expect(waits[0] >= 0.29 && waits[0] < 1.3, "first retry after base (0.3 s): \(waits[0])")
        #expect(waits[1] >= 0.58 && waits[1] < 1.6, "second after base·2 (0.6 s): \(waits[1])")

        let doomed = try await harness.finished(try await harness.submit("doomed").taskID)
        #expect(doomed.status == .error && doomed.steps[0].status == .error && doomed.steps[0].attempts == 1)
        #expect(doomed.steps[0].lastError.message == "card declined" && !doomed.steps[0].lastError.retryable)

        let throttled = try await harness.finished(try await harness.submit("throttled").taskID)
        let throttledWaits = retryWaits(try await harness.history(throttled.taskID))
        #expect(throttled.status == .complete && throttledWaits.count == 1)
        #expect(throttledWaits.allSatisfy { $0 >= 0.99 && $0 < 2 }, "the requested 1 s, not the policy's 0.1 s: \(throttledWaits)")
        await harness.stop()
    }

    @Test func aStepPastItsTimeoutIsCalledOffAndRetried() async throws {
        let harness = try await DispatchHarness()
        try await harness.register(template("slow", [step("slow", backoff: 0.1, timeout: 1)]))
        let cancelled = NIOLockedValueBox(0)
        try await harness.worker { worker in
            worker.handle("slow") { step in
                if step.attempt == 1 {
                    #expect(step.deadline.map { $0.timeIntervalSinceNow > 0.5 && $0.timeIntervalSinceNow <= 1.1 } == true)
                    do {
                        try await Task.sleep(for: .seconds(20))
                    } catch {
                        cancelled.withLockedValue { $0 += 1 }
                        throw error
                    }
                }
                return StepOutput()
            }
        }
        let task = try await harness.finished(try await harness.submit("slow").taskID)
        #expect(task.status == .complete && task.steps[0].attempts == 2)
        let history = try await harness.history(task.taskID)
        #expect(history.contains { $0.status == .waitingForRetry && $0.attempt == 1 })
        try await eventually("the worker was told to stop attempt 1") { cancelled.withLockedValue { $0 } == 1 }
        await harness.stop()
    }

    @Test func aWorkerNeverHoldsMoreStepsThanItsSlots() async throws {
        let harness = try await DispatchHarness()
        try await harness.register(template("nap", [step("nap")]))
        let concurrency = NIOLockedValueBox((now: 0, most: 0))
        // All ten wait in the queue before the worker comes, so it is offered more than it may take.
        var ids: [String] = []
        for _ in 0..<10 { ids.append(try await harness.submit("nap").taskID) }
        try await harness.worker(slots: 2) { worker in
            worker.handle("nap") { _ in
                concurrency.withLockedValue { $0.now += 1; $0.most = max($0.most, $0.now) }
                try await Task.sleep(for: .milliseconds(200))
                concurrency.withLockedValue { $0.now -= 1 }
                return StepOutput()
            }
        }
        for id in ids { #expect(try await harness.finished(id).status == .complete) }
        #expect(concurrency.withLockedValue { $0.most } == 2)
        await harness.stop()
    }

    @Test func aStoppingWorkerFinishesWhatItHoldsAndTakesNothingNew() async throws {
        let harness = try await DispatchHarness()
        try await harness.register(template("pair", [step("long"), step("after", dependsOn: ["long"])]))
        let holding = NIOLockedValueBox(false)
        let draining = try await harness.worker(name: "leaving") { worker in
            worker.handle("long") { _ in
                holding.withLockedValue { $0 = true }
                try await Task.sleep(for: .milliseconds(600))
                return results(#"{"done": true}"#)
            }
            worker.handle("after") { _ in results(#"{"by": "leaving"}"#) }
        }
        let task = try await harness.submit("pair")
        try await eventually("the long step started") { holding.withLockedValue { $0 } }
        let stopping = Task { await draining.stop() }
        try await harness.worker(name: "staying") { $0.handle("after") { _ in results(#"{"by": "staying"}"#) } }
        let done = try await harness.finished(task.taskID)
        await stopping.value
        #expect(done.status == .complete)
        let long = done.steps.first { $0.name == "long" }!
        #expect(long.attempts == 1 && long.results.fields["done"]?.boolValue == true, "its result arrived before it left")
        #expect(done.steps.first { $0.name == "after" }?.results.fields["by"]?.stringValue == "staying", "nothing new went to it")
        await harness.stop()
    }

    @Test func aWorkerReconnectsAfterItsServerRestarts() async throws {
        let redis = try await blocking { try PrivateRedis() }
        let database = try await blocking { try PrivatePostgres.shared().createDatabase() }
        var settings = TaskerNode.Settings(databaseURL: database, redisURL: redis.url)
        settings.dispatch = DispatchHarness.fast
        // A port of its own: one that a connection of a test running alongside may take
        // meanwhile is given up for another.
        var started: TaskerNode?
        for _ in 0..<10 where started == nil {
            settings.port = LocalPort.free()
            started = try? await TaskerNode.start(settings)
        }
        var node = try #require(started)
        let worker = Worker(host: "127.0.0.1", port: settings.port, configuration: .init(templates: [diamond], reconnectBackoff: (0.05, 0.2)))
        for handler in ["a", "b", "c", "d"] { worker.handle(handler) { _ in StepOutput() } }
        let running = Task { try await worker.run() }
        try await eventually("registered") { worker.isConnected }
        await node.shutdown()
        try await eventually("the worker noticed") { !worker.isConnected }
        var restarted: TaskerNode?
        for _ in 0..<50 where restarted == nil {
            restarted = try? await TaskerNode.start(settings)
            if restarted == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        node = try #require(restarted, "the port stayed taken")
        try await eventually("registered again") { worker.isConnected }
        let task = try await node.engine.submitTask(.with { $0.name = "diamond" }).task
        try await eventually("the task completed on the reconnected worker") {
            try await node.engine.getTask(task.taskID).status == .complete
        }
        await worker.stop()
        _ = await running.result
        await node.shutdown()
        _ = try? await blocking { redis.stop() }
    }

    @Test func aWorkerOnOneNodeRunsStepsOfTasksSubmittedToAnother() async throws {
        let harness = try await DispatchHarness(nodes: 2)
        try await harness.register(diamond)
        try await harness.worker(on: 0) { worker in
            for handler in ["a", "b", "c", "d"] { worker.handle(handler) { _ in StepOutput() } }
        }
        let task = try await harness.submit("diamond", on: 1)
        #expect(try await harness.finished(task.taskID).status == .complete)
        await harness.stop()
    }

    /// Many tasks over two nodes and workers with few slots, so results often find every slot
    /// held and unblocked steps go through the queue: afterwards every step ran exactly once,
    /// and nothing is left in Postgres, in Redis or in either node.
    @Test(.timeLimit(.minutes(5))) func aLongRunLeavesNothingBehind() async throws {
        let harness = try await DispatchHarness(nodes: 2, dispatch: DispatchHarness.patient)
        try await harness.register(diamond)
        for node in 0..<2 {
            for index in 0..<2 {
                try await harness.worker(on: node, name: "w\(node)\(index)", slots: 3 + index * 5) { worker in
                    for handler in ["a", "b", "c", "d"] { worker.handle(handler) { _ in StepOutput() } }
                }
            }
        }
        let count = 1200
        let next = NIOLockedValueBox(0)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for caller in 0..<16 {
                group.addTask {
                    while next.withLockedValue({ counter -> Bool in counter += 1; return counter <= count }) {
                        _ = try await harness.submit("diamond", on: caller % 2)
                    }
                }
            }
            try await group.waitForAll()
        }
        let pool = PostgresPool(url: harness.databaseURL, size: 1)
        func number(_ sql: String) async throws -> Int {
            try await pool.withConnection { try $0.query(sql, [])[0].int("n")! }
        }
        try await eventually("every task complete", within: 240) {
            try await number("SELECT count(*) AS n FROM tasks WHERE status <> \(TaskStatus.complete.rawValue)") == 0
        }
        #expect(try await number("SELECT count(*) AS n FROM tasks") == count)
        #expect(try await number("SELECT count(*) AS n FROM steps WHERE status <> \(StepStatus.complete.rawValue) OR attempts <> 1") == 0)
        let runs = """
            SELECT count(*) AS n FROM (
                SELECT step_id FROM step_transitions WHERE step_id IS NOT NULL GROUP BY step_id
                HAVING count(*) FILTER (WHERE status = \(StepStatus.complete.rawValue)) <> 1
                    OR count(*) FILTER (WHERE status = \(StepStatus.inProgress.rawValue)) <> 1) AS odd
            """
        #expect(try await number(runs) == 0, "each step started once and completed once")
        for node in harness.nodes {
            try await eventually("node \(node.dispatcher!.nodeID) idle") { await node.dispatcher!.load == Dispatcher.Load() }
        }
        let lane = RedisLane(url: try RedisURL(parsing: harness.redis.url))
        for handler in ["a", "b", "c", "d"] {
            let key = StepQueue.streamKey(handler)
            guard try await lane.command(["EXISTS", key]).integer == 1 else { continue }
            #expect(try await lane.command(["XLEN", key]).integer == 0, "stream of \(handler) empty")
            let pending = try await lane.command(["XPENDING", key, StepQueue.group]).array.first?.integer
            #expect(pending == 0, "nothing of \(handler) delivered and unacknowledged")
        }
        await lane.shutdown()
        await pool.shutdown()
        await harness.stop()
    }
}

/// How long each retry waited: from the failure that scheduled it to its start, so that the
/// worker's own time and the result's trip do not count.
private func retryWaits(_ history: [(step: String, status: StepStatus, attempt: Int, at: Double)]) -> [Double] {
    history.filter { $0.status == .inProgress && $0.attempt > 1 }.compactMap { start in
        history.last { $0.status == .waitingForRetry && $0.attempt == start.attempt - 1 }.map { start.at - $0.at }
    }
}
