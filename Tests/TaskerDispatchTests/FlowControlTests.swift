import Foundation
import NIOConcurrencyHelpers
import SwiftProtobuf
import TaskerDispatch
import TaskerEngine
import TaskerProto
import TaskerQueue
import TaskerRPC
import TaskerWorker
import Testing

/// Delayed starts and priorities (DESIGN §8), through real nodes, Postgres and Redis.
@Suite struct FlowControlTests {
    func submit(_ harness: DispatchHarness, _ name: String, _ configure: (inout Tasker_V1_SubmitTaskRequest) -> Void) async throws -> Tasker_V1_Task {
        var request = Tasker_V1_SubmitTaskRequest()
        request.name = name
        configure(&request)
        let response: Tasker_V1_SubmitTaskResponse = try await harness.client.unary("/tasker.v1.Tasker/SubmitTask", request)
        return response.task
    }

    @Test func aDelayedTaskWaitsPendingAndStartsAtItsTime() async throws {
        let harness = try await DispatchHarness()
        try await harness.register(template("later", [step("first"), step("second", dependsOn: ["first"])]))
        let started = NIOLockedValueBox<[String: Double]>([:])
        try await harness.worker { worker in
            for name in ["first", "second"] {
                worker.handle(name) { step in
                    started.withLockedValue { $0[step.stepName] = Date().timeIntervalSince1970 }
                    return StepOutput()
                }
            }
        }
        let startAt = Date().addingTimeInterval(1.5)
        let task = try await submit(harness, "later") { $0.startAt = Google_Protobuf_Timestamp(date: startAt) }
        #expect(task.status == .pending && task.steps.allSatisfy { $0.status == .pending }, "nothing is queued before its start")
        #expect(task.startAt.date.timeIntervalSince1970.rounded() == startAt.timeIntervalSince1970.rounded())
        let read = try await harness.task(task.taskID)
        #expect(read.steps.first?.waitingReason.hasPrefix("the task starts at ") == true, "\(read.steps.first?.waitingReason ?? "")")
        let done = try await harness.finished(task.taskID)
        #expect(done.status == .complete)
        let first = try #require(started.withLockedValue { $0["first"] })
        #expect(first >= startAt.timeIntervalSince1970 - 0.05, "not before its start")
        #expect(first < startAt.timeIntervalSince1970 + 1, "within a second of it")
        await harness.stop()
    }

    @Test func aDelayedTaskStartsWhenRedisLostItsTimer() async throws {
        let harness = try await DispatchHarness()
        try await harness.register(template("later", [step("only")]))
        try await harness.worker { $0.handle("only") { _ in StepOutput() } }
        let task = try await submit(harness, "later") { $0.startAt = Google_Protobuf_Timestamp(date: Date().addingTimeInterval(1)) }
        let lane = RedisLane(url: try RedisURL(parsing: harness.redis.url))
        _ = try await lane.command(["FLUSHALL"])
        await lane.shutdown()
        #expect(try await harness.finished(task.taskID).status == .complete, "the sweeper finds it in Postgres")
        await harness.stop()
    }

    @Test func aPastStartRunsAtOnceAndThePriorityIsKept() async throws {
        let harness = try await DispatchHarness()
        try await harness.register(template("now", [step("only")]))
        try await harness.worker { $0.handle("only") { _ in StepOutput() } }
        let task = try await submit(harness, "now") {
            $0.startAt = Google_Protobuf_Timestamp(date: Date().addingTimeInterval(-3600))
            $0.priority = 2
        }
        #expect(task.steps.first?.status == .enqueued)
        let done = try await harness.finished(task.taskID)
        #expect(done.status == .complete && done.priority == 2)
        let plain = try await submit(harness, "now") { _ in }
        #expect(plain.priority == 3 && !plain.hasStartAt, "0 means 3; no start_at means at once")
        await harness.stop()
    }

    @Test func acrossNodesPriorityOneSubmittedLastStartsBeforePriorityFiveSubmittedFirst() async throws {
        let harness = try await DispatchHarness(nodes: 2)
        try await harness.register(template("job", [step("work")]))
        var submitted: [(id: String, priority: Int32)] = []
        for index in 0..<24 {
            let priority: Int32 = index < 12 ? 5 : 1
            let task = try await submit(harness, "job") { $0.priority = priority }
            submitted.append((task.taskID, priority))
        }
        let order = NIOLockedValueBox<[String]>([])
        for node in 0..<2 {
            try await harness.worker(on: node, name: "w\(node)", slots: 1) { worker in
                worker.handle("work") { step in
                    order.withLockedValue { $0.append(step.taskID) }
                    try await Task.sleep(for: .milliseconds(20))
                    return StepOutput()
                }
            }
        }
        for task in submitted { _ = try await harness.finished(task.id) }
        let started = order.withLockedValue { $0 }
        let priorityOf = Dictionary(uniqueKeysWithValues: submitted.map { ($0.id, $0.priority) })
        let lastFirst = try #require(started.lastIndex { priorityOf[$0] == 1 })
        let firstLast = try #require(started.firstIndex { priorityOf[$0] == 5 })
        // A worker that connected first may take one priority-5 step before the other's
        // priority-1 steps are all taken: no more than one per node.
        #expect(started.prefix(lastFirst + 1).filter { priorityOf[$0] == 5 }.count <= 2, "started: \(started.map { priorityOf[$0]! })")
        #expect(firstLast >= 10, "started: \(started.map { priorityOf[$0]! })")
        await harness.stop()
    }

    @Test func aPriorityFiveStepStartsWithinItsAgingBoundUnderAStreamOfPriorityOnes() async throws {
        var dispatch = DispatchHarness.fast
        dispatch.agingInterval = .milliseconds(500)
        let harness = try await DispatchHarness(dispatch: dispatch)
        try await harness.register(template("job", [step("work")]))
        let started = NIOLockedValueBox<[String]>([])
        try await harness.worker(slots: 1) { worker in
            worker.handle("work") { step in
                started.withLockedValue { $0.append(step.taskID) }
                try await Task.sleep(for: .milliseconds(50))
                return StepOutput()
            }
        }
        for _ in 0..<5 { _ = try await submit(harness, "job") { $0.priority = 1 } }
        let patient = try await submit(harness, "job") { $0.priority = 5 }
        let patientAt = Date().timeIntervalSince1970
        // Priority 1 comes faster than the one slot runs it (a step takes 50 ms and more): without
        // aging, the priority-5 step would never start.
        let submittedAt = NIOLockedValueBox<[String: Double]>([:])
        let feeding = Task {
            while !Task.isCancelled {
                if let task = try? await submit(harness, "job", { $0.priority = 1 }) {
                    submittedAt.withLockedValue { $0[task.taskID] = Date().timeIntervalSince1970 }
                }
                try? await Task.sleep(for: .milliseconds(25))
            }
        }
        _ = try await harness.finished(patient.taskID)
        feeding.cancel()
        _ = await feeding.result
        let order = started.withLockedValue { $0 }
        let before = order.prefix { $0 != patient.taskID }.compactMap { submittedAt.withLockedValue { $0 }[$0] }
        #expect(!before.isEmpty, "priority 1 submitted after it went first")
        // Four intervals raise 5 to 1: a priority 1 submitted later than that ranks behind it.
        let latest = try #require(before.max()) - patientAt
        #expect(latest < 2.5, "a priority 1 submitted \(latest) s after it started before it")
        await harness.stop()
    }

    @Test func prioritiesOrderABacklogAndFirstComeWithinOne() async throws {
        let harness = try await DispatchHarness()
        try await harness.register(template("job", [step("work")]))
        var submitted: [(id: String, priority: Int32)] = []
        for priority: Int32 in [5, 5, 5, 3, 3, 1, 1, 1] {
            let task = try await submit(harness, "job") { $0.priority = priority }
            submitted.append((task.taskID, priority))
        }
        let order = NIOLockedValueBox<[String]>([])
        try await harness.worker(slots: 1) { worker in
            worker.handle("work") { step in
                order.withLockedValue { $0.append(step.taskID) }
                return StepOutput()
            }
        }
        for task in submitted { _ = try await harness.finished(task.id) }
        let byPriority = submitted.enumerated().sorted { ($0.element.priority, $0.offset) < ($1.element.priority, $1.offset) }.map(\.element.id)
        #expect(order.withLockedValue { $0 } == byPriority, "1 before 3 before 5, and in submission order within each")
        await harness.stop()
    }

    /// Attempts running now per concurrency key, and the most seen at once.
    final class KeyCounter: Sendable {
        private let counts = NIOLockedValueBox<(now: [String: Int], most: [String: Int])>(([:], [:]))

        func started(_ key: String) {
            counts.withLockedValue { counts in
                counts.now[key, default: 0] += 1
                counts.most[key] = max(counts.most[key] ?? 0, counts.now[key]!)
            }
        }

        func ended(_ key: String) {
            counts.withLockedValue { $0.now[key, default: 0] -= 1 }
        }

        var most: [String: Int] { counts.withLockedValue { $0.most } }
    }

    @Test func aConcurrencyKeyNeverRunsMoreThanItsLimitAcrossNodesAndWaitingSpendsNoAttempt() async throws {
        let harness = try await DispatchHarness(nodes: 3)
        var limited = step("call", dependsOn: ["prepare"])
        limited.concurrency = .with {
            $0.key = "customer:{$.customer}"
            $0.maxRunning = 2
        }
        try await harness.register(template("limited", [step("prepare"), limited]))
        // A backlog first, so that every key has steps ready at once when the workers come.
        var tasks: [String] = []
        for n in 0..<60 {
            let task = try await harness.submit("limited", on: n % 3, context: #"{"customer": "c\#(n % 4)", "n": \#(n)}"#)
            #expect(task.steps.last?.concurrencyKey == "customer:c\(n % 4)")
            tasks.append(task.taskID)
        }
        let counter = KeyCounter()
        for node in 0..<3 {
            try await harness.worker(on: node, name: "w\(node)", slots: 6) { worker in
                worker.handle("prepare") { _ in StepOutput() }
                worker.handle("call") { step in
                    let key = step.context.fields["customer"]?.stringValue ?? "?"
                    counter.started(key)
                    try? await Task.sleep(for: .milliseconds(100))
                    counter.ended(key)
                    return StepOutput()
                }
            }
        }
        for id in tasks { #expect(try await harness.finished(id, within: 60).status == .complete) }
        let most = counter.most
        #expect(most.count == 4 && most.values.allSatisfy { $0 <= 2 }, "never more than 2 of a key at once: \(most)")
        #expect(most.values.contains(2), "the limit is 2, not 1: \(most)")
        let attempts = try await tasks.asyncMap { try await harness.task($0).steps.last!.attempts }
        #expect(attempts.allSatisfy { $0 == 1 }, "waiting spends no attempt")
        await harness.stop()
    }

    @Test func aLimitedStepMadeReadyByAResultStartsAtOnceWhenItsLimitsHaveRoom() async throws {
        let harness = try await DispatchHarness()
        let limited = { (name: String, after: [String]) -> Tasker_V1_StepTemplate in
            var limited = step(name, dependsOn: after)
            limited.concurrency = .with { $0.key = "k:{$.k}"; $0.maxRunning = 2 }
            limited.rateLimits = [.with { $0.key = "api"; $0.limit = 100; $0.periodSeconds = 60 }]
            return limited
        }
        try await harness.register(template("chain", [limited("first", []), limited("second", ["first"]), limited("third", ["second"])]))
        try await harness.worker(slots: 2) { worker in
            for handler in ["first", "second", "third"] {
                worker.handle(handler) { _ in StepOutput() }
            }
        }
        let task = try await harness.finished(try await harness.submit("chain", context: #"{"k": 1}"#).taskID)
        #expect(task.status == .complete && task.steps.allSatisfy { $0.attempts == 1 })
        let added = try await harness.entriesAdded(["first", "second", "third"])
        #expect(added == ["first": 1, "second": 0, "third": 0], "only the first went through the queue: \(added)")
        let lane = RedisLane(url: try RedisURL(parsing: harness.redis.url))
        #expect(try await lane.command(["ZCARD", "tasker:rate:api"]).integer == 3, "each start spent the rate")
        try await eventually("every place is given back") {
            try await lane.command(["HLEN", "tasker:concurrency:k:1"]).integer == 0
        }
        await lane.shutdown()
        await harness.stop()
    }

    @Test func aWaitingStepSaysWhyAndABadKeyIsRefusedNamingThePath() async throws {
        let harness = try await DispatchHarness()
        var limited = step("call")
        limited.concurrency = .with {
            $0.key = "account:{$.account.id}"
            $0.maxRunning = 1
        }
        try await harness.register(template("one-at-a-time", [limited]))
        let release = NIOLockedValueBox(false)
        try await harness.worker(slots: 4) { worker in
            worker.handle("call") { _ in
                while !release.withLockedValue({ $0 }) { try await Task.sleep(for: .milliseconds(10)) }
                return StepOutput()
            }
        }
        let first = try await harness.submit("one-at-a-time", context: #"{"account": {"id": 7}}"#)
        let second = try await harness.submit("one-at-a-time", context: #"{"account": {"id": 7}}"#)
        try await eventually("the second waits for the first") {
            try await harness.task(second.taskID).steps.first?.waitingReason == "1 of concurrency key 'account:7' are running (its limit)"
        }
        #expect(try await harness.task(first.taskID).steps.first?.status == .inProgress)
        release.withLockedValue { $0 = true }
        #expect(try await harness.finished(second.taskID).status == .complete)
        for (context, path) in [(#"{}"#, "$.account.id"), (#"{"account": {"id": null}}"#, "$.account.id"), (#"{"account": [1]}"#, "$.account.id")] {
            do {
                _ = try await harness.submit("one-at-a-time", context: context)
                Issue.record("\(context) was taken")
            } catch let error as RPCError {
                #expect(error.code == .invalidArgument && error.message.contains(path) && error.message.contains("'call'"), "\(error)")
            }
        }
        await harness.stop()
    }

    @Test func aRateLimitKeyIsRenderedFromTheContextAndOneItCannotFillIsRefused() async throws {
        let harness = try await DispatchHarness()
        var limited = step("call")
        limited.rateLimits = [.with { $0.key = "api:{$.account}"; $0.limit = 1; $0.periodSeconds = 60 }, .with { $0.limit = 100; $0.periodSeconds = 1 }]
        try await harness.register(template("rated", [limited]))
        let started = NIOLockedValueBox(0)
        try await harness.worker(slots: 4) { worker in
            worker.handle("call") { _ in
                started.withLockedValue { $0 += 1 }
                return StepOutput()
            }
        }
        let first = try await harness.submit("rated", context: #"{"account": 7}"#)
        #expect(first.steps.first?.rateLimitKeys == ["api:7", "rated/call"], "an empty key is the template's step")
        #expect(try await harness.finished(first.taskID).status == .complete)
        let second = try await harness.submit("rated", context: #"{"account": 7}"#)
        try await eventually("the second waits for the minute's one call") {
            try await harness.task(second.taskID).steps.first?.waitingReason.hasPrefix("rate limit 'api:7' is spent until ") == true
        }
        let other = try await harness.submit("rated", context: #"{"account": 8}"#)
        #expect(try await harness.finished(other.taskID).status == .complete, "another key has its own room")
        #expect(try await harness.task(second.taskID).steps.first?.attempts == 0, "waiting spends no attempt")
        do {
            _ = try await harness.submit("rated", context: #"{"account": {"id": 1}}"#)
            Issue.record("an object was taken as a key")
        } catch let error as RPCError {
            #expect(error.code == .invalidArgument && error.message.contains("$.account") && error.message.contains("rate limit key"), "\(error)")
        }
        await harness.stop()
    }

    @Test func aTaskPastItsTimeoutGoesErrorItsAttemptIsCalledOffAndItsLateResultDropped() async throws {
        let harness = try await DispatchHarness()
        var slow = template("slow", [step("hold"), step("after", dependsOn: ["hold"])])
        slow.timeoutSeconds = 1
        try await harness.register(slow)
        var worker = try await RawWorker(port: harness.nodes[0].server.port)
        _ = try await worker.register(["hold", "after"])
        // It beats, as a live worker does: a loaded machine may take longer than the silence
        // a worker is allowed.
        let call = worker.call
        let beats = Task {
            while !Task.isCancelled {
                try? await call.send(.with { $0.heartbeat = .init() })
                try? await Task.sleep(for: .milliseconds(200))
            }
        }
        defer { beats.cancel() }
        let task = try await harness.submit("slow")
        #expect(task.hasDeadlineAt && abs(task.deadlineAt.date.timeIntervalSince(task.createdAt.date) - 1) < 0.01)
        let held = try await worker.assignment()
        // The sweeper (every 0.3 s here) finds the task past its deadline.
        var calledOff: Tasker_V1_CancelStep?
        while let message = try await worker.responses.next() {
            if case .cancel(let cancel) = message.kind {
                calledOff = cancel
                break
            }
        }
        #expect(calledOff?.stepID == held.stepID && calledOff?.reason == "the task timed out after 1 s", "\(String(describing: calledOff))")
        let timedOut = try await harness.task(task.taskID)
        #expect(timedOut.status == .error)
        #expect(timedOut.steps.allSatisfy { $0.status == .cancelled && $0.lastError.message == "the task timed out after 1 s" }, "\(timedOut.steps)")
        try await worker.succeed(held.stepID, attempt: held.attempt)
        try await Task.sleep(for: .milliseconds(300))
        let after = try await harness.task(task.taskID)
        #expect(after.status == .error && after.steps[0].status == .cancelled, "the late result is dropped")
        worker.call.cancel()
        await worker.close()
        await harness.stop()
    }

    @Test func aStepNotStartedWithinItsLimitFailsRetryablyUntilItsAttemptsRunOut() async throws {
        let harness = try await DispatchHarness()
        var waiting = step("wait", retryLimit: 2, backoff: 0.1)
        waiting.scheduleToStartSeconds = 1
        try await harness.register(template("unstarted", [waiting]))
        let task = try await harness.submit("unstarted")
        // No worker runs it: two attempts that never start, then ERROR.
        let failed = try await harness.finished(task.taskID, within: 15)
        #expect(failed.status == .error)
        #expect(failed.steps[0].attempts == 2 && failed.steps[0].lastError.message == "not started within 1 s", "\(failed.steps[0])")
        try await harness.worker { $0.handle("wait") { _ in StepOutput() } }
        let ran = try await harness.finished(try await harness.submit("unstarted").taskID)
        #expect(ran.status == .complete && ran.steps[0].attempts == 1, "a step that starts in time is not touched")
        await harness.stop()
    }

    @Test func badTimeoutsAreRefusedNamingTheField() async throws {
        let harness = try await DispatchHarness()
        var template = template("bad", [step("a")])
        template.timeoutSeconds = -1
        var unstarted = step("a")
        unstarted.scheduleToStartSeconds = 40 * 24 * 3600
        for (bad, field) in [(template, "timeout_seconds -1"), (Tasker_V1_TaskTemplate.with { $0.name = "bad2"; $0.version = "1"; $0.steps = [unstarted] }, "schedule_to_start_seconds 3456000")] {
            do {
                try await harness.register(bad)
                Issue.record("\(field) was taken")
            } catch let error as RPCError {
                #expect(error.code == .invalidArgument && error.message.contains(field), "\(error)")
            }
        }
        await harness.stop()
    }

    @Test func badStartsAndPrioritiesAreRefusedNamingTheField() async throws {
        let harness = try await DispatchHarness()
        try await harness.register(template("job", [step("work")]))
        let cases: [(String, (inout Tasker_V1_SubmitTaskRequest) -> Void)] = [
            ("priority", { $0.priority = 6 }),
            ("priority", { $0.priority = -1 }),
            ("start_at", { $0.startAt = Google_Protobuf_Timestamp(date: Date().addingTimeInterval(400 * 86_400)) }),
            ("start_at", { $0.startAt = .with { $0.seconds = 1_800_000_000; $0.nanos = -1 } }),
            ("start_at", { $0.startAt = .with { $0.seconds = -62_135_596_801 } }),
        ]
        for (field, configure) in cases {
            do {
                _ = try await submit(harness, "job", configure)
                Issue.record("\(field) was taken")
            } catch let error as RPCError {
                #expect(error.code == .invalidArgument && error.message.hasPrefix(field), "\(error)")
            }
        }
        await harness.stop()
    }
}

extension Sequence where Element: Sendable {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var mapped: [T] = []
        for element in self { mapped.append(try await transform(element)) }
        return mapped
    }
}
