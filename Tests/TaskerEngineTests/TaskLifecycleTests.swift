import Foundation
import NIOConcurrencyHelpers
import SwiftProtobuf
import TaskerProto
import TaskerRPC
import TaskerStore
import Testing

@testable import TaskerEngine

extension TaskerHarness {
    func task(_ id: String) async throws -> Tasker_V1_Task {
        try await engine.getTask(id)
    }

    func step(_ task: Tasker_V1_Task, _ name: String) -> Tasker_V1_WorkflowStep {
        task.steps.first { $0.name == name }!
    }

    /// Starts and completes a step the way a worker would.
    func run(_ stepID: String, results: String = #"{"ok": true}"#) async throws {
        let attempt = try #require(try await engine.startStep(stepID)).attempt
        let done = try await engine.finishStep(
            stepID, attempt: attempt, outcome: .success(results: try Google_Protobuf_Struct(jsonString: results), annotations: []))
        #expect(done)
    }

    func fail(_ stepID: String, retryable: Bool = true, backoff: Int32 = 0) async throws {
        let attempt = try #require(try await engine.startStep(stepID)).attempt
        #expect(try await engine.finishStep(stepID, attempt: attempt, outcome: .failure(message: "boom \(attempt)", retryable: retryable, backoffRequestSeconds: backoff)))
    }

    func enqueued(_ task: Tasker_V1_Task? = nil) async throws -> [String] {
        try await pool.withConnection { connection in
            try connection.query(
                "SELECT step_id::text AS id FROM steps WHERE status = 2 AND ($1::uuid IS NULL OR task_id = $1::uuid) ORDER BY position",
                [task?.taskID]
            ).compactMap { $0["id"] }
        }
    }
}

final class RecordingObserver: StepChangeObserver {
    let changes = NIOLockedValueBox<[StepChange]>([])

    func stepsChanged(_ changes: [StepChange]) async {
        self.changes.withLockedValue { $0 += changes }
    }
}

func fastRetries(_ step: Tasker_V1_StepTemplate, limit: Int32 = 3) -> Tasker_V1_StepTemplate {
    var step = step
    step.retryLimit = limit
    step.backoff.baseSeconds = 0.2
    step.backoff.maxSeconds = 10
    step.backoff.jitter = 0.01
    return step
}

@Suite(.timeLimit(.minutes(2))) struct TaskLifecycleTests {
    @Test func aDiamondRunsInDependencyOrder() async throws {
        let harness = try await TaskerHarness.start()
        _ = try await harness.register(template(diamond))
        let task = try await harness.submit { _ in }.task
        var order: [String] = []
        while true {
            let ready = try await harness.enqueued(task)
            if ready.isEmpty { break }
            for id in ready {
                order.append(try await harness.task(task.taskID).steps.first { $0.stepID == id }!.name)
                try await harness.run(id)
            }
        }
        #expect(order.first == "a" && order.last == "d" && Set(order) == ["a", "b", "c", "d"] && order.count == 4)
        let done = try await harness.task(task.taskID)
        #expect(done.status == .complete)
        #expect(done.hasCompletedAt)
        #expect(done.steps.allSatisfy { $0.status == .complete && $0.attempts == 1 && $0.results.fields["ok"]?.boolValue == true })
        let history = try await harness.history(task.taskID)
        #expect(history.map(\.sequence) == Array(1...history.count), "the history is gapless")
        for name in ["a", "b", "c", "d"] {
            #expect(history.filter { $0.step == name }.map(\.status) == [2, 3, 4], "\(name): ENQUEUED, IN_PROGRESS, COMPLETE once each")
        }
        #expect(history.filter { $0.step.isEmpty }.count == 3, "task: PENDING, IN_PROGRESS, COMPLETE")
        await harness.stop()
    }

    @Test func aReadOfATaskIsOneMomentOfItWhileItMoves() async throws {
        let harness = try await TaskerHarness.start()
        _ = try await harness.register(template([step("only")]))
        let current = NIOLockedValueBox<String?>(nil)
        let done = NIOLockedValueBox(false)
        let driving = Task {
            defer { done.withLockedValue { $0 = true } }
            for _ in 0..<200 {
                let task = try await harness.submit { _ in }.task
                current.withLockedValue { $0 = task.taskID }
                try await harness.run(task.steps[0].stepID)
            }
        }
        var reads = 0
        while !done.withLockedValue({ $0 }) {
            guard let id = current.withLockedValue({ $0 }) else { await Task.yield(); continue }
            let task = try await harness.task(id)
            reads += 1
            // A transition committed between the read of the task and of its steps would show
            // the task's status older than its steps' (and a watch would never be sent it).
            let expected = TaskStatusRule.status(of: task.steps.map(\.status), cancelled: false)
            if task.status != expected {
                Issue.record("read \(reads): the task \(task.status) with its step \(task.steps[0].status)")
                break
            }
        }
        try await driving.value
        #expect(reads > 100, "the reads raced the transitions: \(reads)")
        await harness.stop()
    }

    @Test func aFailingStepRetriesWithGrowingDelaysThenErrorsWhileItsBranchFinishes() async throws {
        let harness = try await TaskerHarness.start()
        _ = try await harness.register(template([step("a"), fastRetries(step("b", dependsOn: ["a"])), step("c", dependsOn: ["a"]),
                                                 step("d", dependsOn: ["b", "c"])]))
        let task = try await harness.submit { _ in }.task
        try await harness.run(harness.step(task, "a").stepID)
        let b = harness.step(task, "b").stepID
        let c = harness.step(task, "c").stepID
        try await harness.engine.startStep(c).map { _ in () }

        var delays: [Double] = []
        for attempt in 1...3 {
            try await harness.fail(b)
            let current = harness.step(try await harness.task(task.taskID), "b")
            if attempt < 3 {
                #expect(current.status == .waitingForRetry)
                delays.append(current.nextAttemptAt.timeIntervalSince1970 - current.lastError.at.timeIntervalSince1970)
                let early = try await harness.engine.enqueueDueRetries()
                #expect(early == 0 || Date().timeIntervalSince1970 >= current.nextAttemptAt.timeIntervalSince1970,
                        "never before it is due")
                try await Task.sleep(for: .seconds(max(current.nextAttemptAt.timeIntervalSince1970 - Date().timeIntervalSince1970, 0) + 0.05))
                #expect(try await harness.engine.enqueueDueRetries() + early == 1, "once it is due")
            } else {
                #expect(current.status == .error)
                #expect(current.attempts == 3)
                #expect(current.lastError.message == "boom 3")
            }
        }
        #expect(delays.count == 2 && delays[1] > delays[0] * 1.5, "delays grow: \(delays)")
        #expect(abs(delays[0] - 0.2) < 0.05 && abs(delays[1] - 0.4) < 0.05, "base 0.2 s doubling: \(delays)")
        #expect(try await harness.task(task.taskID).status == .inProgress, "c is still running")

        let attempt = try await harness.task(task.taskID).steps.first { $0.name == "c" }!.attempts
        #expect(try await harness.engine.finishStep(c, attempt: attempt, outcome: .success(results: .init(), annotations: [])))
        let stopped = try await harness.task(task.taskID)
        #expect(stopped.status == .error)
        #expect(harness.step(stopped, "d").status == .pending)

        // RetryStep revives b and the task.
        let revived: Tasker_V1_Task = try await harness.call("RetryStep", Tasker_V1_RetryStepRequest.with { $0.taskID = task.taskID; $0.stepName = "b" })
        #expect(revived.status == .inProgress)
        #expect(harness.step(revived, "b").status == .enqueued && harness.step(revived, "b").attempts == 0)
        try await harness.run(b)
        try await harness.run(harness.step(task, "d").stepID)
        #expect(try await harness.task(task.taskID).status == .complete)
        await harness.stop()
    }

    @Test func aPermanentFailureIsFinalAndABackoffRequestIsHonoured() async throws {
        let harness = try await TaskerHarness.start()
        _ = try await harness.register(template([step("a"), step("b")]))
        let task = try await harness.submit { _ in }.task
        try await harness.fail(harness.step(task, "a").stepID, retryable: false)
        try await harness.fail(harness.step(task, "b").stepID, backoff: 30)
        let after = try await harness.task(task.taskID)
        #expect(harness.step(after, "a").status == .error && harness.step(after, "a").attempts == 1)
        let b = harness.step(after, "b")
        #expect(b.status == .waitingForRetry)
        #expect(b.nextAttemptAt.timeIntervalSince1970 - b.lastError.at.timeIntervalSince1970 >= 29.9)
        #expect(after.status == .inProgress, "b may still succeed")
        await harness.stop()
    }

    @Test func observersAreToldEveryCommittedTransitionWithWhatDispatchNeeds() async throws {
        let harness = try await TaskerHarness.start()
        let observer = RecordingObserver()
        harness.engine.observe(observer)
        _ = try await harness.register(template([step("a"), step("b", dependsOn: ["a"]), fastRetries(step("c", dependsOn: ["a"]))]))
        let task = try await harness.submit { $0.context = try! Google_Protobuf_Struct(jsonString: #"{"cart": 7}"#) }.task
        let first = observer.changes.withLockedValue { $0 }
        #expect(first.map(\.sequence) == [1, 2])
        #expect(first[1].stepName == "a" && first[1].status == .enqueued && first[1].handler == "a_handler")

        try await harness.run(harness.step(task, "a").stepID, results: #"{"paid": true}"#)
        let enqueued = observer.changes.withLockedValue { $0 }.filter { $0.status == .enqueued }
        #expect(enqueued.map(\.stepName).sorted() == ["a", "b", "c"])
        #expect(enqueued.allSatisfy { $0.handler == "\($0.stepName)_handler" })

        let started = try #require(try await harness.engine.startStep(harness.step(task, "b").stepID))
        #expect(started.attempt == 1 && started.handler == "b_handler" && started.taskName == "order" && started.stepName == "b")
        #expect(started.context.fields["cart"]?.numberValue == 7)
        #expect(started.dependencyResults.keys.sorted() == ["a"])
        #expect(started.dependencyResults["a"]?.fields["paid"]?.boolValue == true)

        let failedAt = Date().timeIntervalSince1970
        try await harness.fail(harness.step(task, "c").stepID)
        let retry = try #require(observer.changes.withLockedValue { $0 }.last { $0.status == .waitingForRetry })
        #expect(try #require(retry.retryAt) >= failedAt + 0.19, "due after the 0.2 s backoff")

        let told = observer.changes.withLockedValue { $0 }
        #expect(told.map(\.sequence) == Array(1...told.count), "every transition once, in order")
        #expect(try await harness.history(task.taskID).map(\.sequence) == told.map(\.sequence))
        await harness.stop()
    }

    @Test func duplicateAndStaleOutcomesChangeNothing() async throws {
        let harness = try await TaskerHarness.start()
        _ = try await harness.register(template([step("a"), step("b", dependsOn: ["a"])]))
        let task = try await harness.submit { _ in }.task
        let a = harness.step(task, "a").stepID
        #expect(try await harness.engine.startStep(a)?.attempt == 1)
        #expect(try await harness.engine.startStep(a) == nil, "already taken")
        let before = try await harness.history(task.taskID).count
        #expect(!(try await harness.engine.finishStep(a, attempt: 2, outcome: .success(results: .init(), annotations: []))), "wrong attempt")
        #expect(try await harness.history(task.taskID).count == before)
        #expect(try await harness.engine.finishStep(a, attempt: 1, outcome: .success(results: .init(), annotations: [])))
        let settled = try await harness.history(task.taskID).count
        #expect(!(try await harness.engine.finishStep(a, attempt: 1, outcome: .success(results: .init(), annotations: []))), "twice")
        #expect(!(try await harness.engine.finishStep(a, attempt: 1, outcome: .failure(message: "late", retryable: true, backoffRequestSeconds: 0))))
        #expect(try await harness.history(task.taskID).count == settled)
        #expect(harness.step(try await harness.task(task.taskID), "a").status == .complete)
        await harness.stop()
    }

    @Test func cancelStopsEveryStepThatCouldMove() async throws {
        let harness = try await TaskerHarness.start()
        _ = try await harness.register(template(diamond))
        let task = try await harness.submit { _ in }.task
        let a = harness.step(task, "a").stepID
        let attempt = try #require(try await harness.engine.startStep(a)).attempt
        let cancelled: Tasker_V1_Task = try await harness.call("CancelTask", Tasker_V1_CancelTaskRequest.with { $0.taskID = task.taskID; $0.reason = "customer left" })
        #expect(cancelled.status == .cancelled)
        #expect(cancelled.steps.allSatisfy { $0.status == .cancelled })
        #expect(cancelled.annotations.first?.annotation.fields["reason"]?.stringValue == "customer left")
        #expect(!(try await harness.engine.finishStep(a, attempt: attempt, outcome: .success(results: .init(), annotations: []))))
        await expectStatus(.failedPrecondition, containing: "already finished") {
            let _: Tasker_V1_Task = try await harness.call("CancelTask", Tasker_V1_CancelTaskRequest.with { $0.taskID = task.taskID })
        }
        await harness.stop()
    }

    @Test func resolveUnblocksAndRefusesFinishedSteps() async throws {
        let harness = try await TaskerHarness.start()
        _ = try await harness.register(template([fastRetries(step("a"), limit: 1), step("b", dependsOn: ["a"])]))
        let task = try await harness.submit { _ in }.task
        try await harness.fail(harness.step(task, "a").stepID)
        #expect(try await harness.task(task.taskID).status == .error)
        await expectStatus(.failedPrecondition, containing: "step 'b' is PENDING, not ERROR") {
            let _: Tasker_V1_Task = try await harness.call("RetryStep", Tasker_V1_RetryStepRequest.with { $0.taskID = task.taskID; $0.stepName = "b" })
        }
        let resolved: Tasker_V1_Task = try await harness.call("ResolveStep", Tasker_V1_ResolveStepRequest.with {
            $0.taskID = task.taskID
            $0.stepName = "a"
            $0.results = try! Google_Protobuf_Struct(jsonString: #"{"by": "hand"}"#)
            $0.reason = "fixed upstream"
        })
        #expect(harness.step(resolved, "a").status == .resolvedManually)
        #expect(harness.step(resolved, "a").results.fields["by"]?.stringValue == "hand")
        #expect(harness.step(resolved, "b").status == .enqueued)
        #expect(resolved.status == .inProgress)
        await expectStatus(.failedPrecondition, containing: "already finished") {
            let _: Tasker_V1_Task = try await harness.call("ResolveStep", Tasker_V1_ResolveStepRequest.with { $0.taskID = task.taskID; $0.stepName = "a" })
        }
        await expectStatus(.notFound, containing: "no step 'zz'") {
            let _: Tasker_V1_Task = try await harness.call("ResolveStep", Tasker_V1_ResolveStepRequest.with { $0.taskID = task.taskID; $0.stepName = "zz" })
        }
        try await harness.run(harness.step(task, "b").stepID)
        #expect(try await harness.task(task.taskID).status == .complete)
        await harness.stop()
    }

    @Test func sixteenConcurrentWorkersNeverLoseOrDoubleATransition() async throws {
        let harness = try await TaskerHarness.start()
        _ = try await harness.register(template(diamond))
        var tasks: [String] = []
        for _ in 0..<8 { tasks.append(try await harness.submit { _ in }.task.taskID) }
        let completions = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<16 {
                group.addTask {
                    var done = 0
                    var idle = 0
                    while idle < 20 {
                        let ready = try await harness.enqueued().shuffled()
                        if ready.isEmpty { idle += 1; try await Task.sleep(for: .milliseconds(10)); continue }
                        idle = 0
                        for id in ready.prefix(2) {
                            guard let attempt = try await harness.engine.startStep(id)?.attempt else { continue }
                            if try await harness.engine.finishStep(id, attempt: attempt, outcome: .success(results: .init(), annotations: [])) {
                                done += 1
                            }
                        }
                    }
                    return done
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(completions == 32)
        for taskID in tasks {
            #expect(try await harness.task(taskID).status == .complete)
            let history = try await harness.history(taskID)
            #expect(history.map(\.sequence) == Array(1...history.count))
            for name in ["a", "b", "c", "d"] {
                #expect(history.filter { $0.step == name }.map(\.status) == [2, 3, 4])
            }
        }
        await harness.stop()
    }

    @Test func listTasksFiltersAndPages() async throws {
        let harness = try await TaskerHarness.start()
        _ = try await harness.register(template(diamond))
        var ids: [String] = []
        for index in 0..<5 { ids.append(try await harness.submit { $0.tags = index % 2 == 0 ? ["even"] : ["odd"] }.task.taskID) }
        var seen: [String] = []
        var token = ""
        repeat {
            let page: Tasker_V1_ListTasksResponse = try await harness.call("ListTasks", Tasker_V1_ListTasksRequest.with { $0.pageSize = 2; $0.pageToken = token })
            #expect(page.tasks.count <= 2)
            seen += page.tasks.map(\.taskID)
            token = page.nextPageToken
        } while !token.isEmpty
        #expect(seen == ids.reversed(), "newest first, each once")
        let even: Tasker_V1_ListTasksResponse = try await harness.call("ListTasks", Tasker_V1_ListTasksRequest.with { $0.tag = "even" })
        #expect(even.tasks.count == 3)
        let pending: Tasker_V1_ListTasksResponse = try await harness.call("ListTasks", Tasker_V1_ListTasksRequest.with { $0.status = .complete })
        #expect(pending.tasks.isEmpty)
        await expectStatus(.invalidArgument, containing: "page_token") {
            let _: Tasker_V1_ListTasksResponse = try await harness.call("ListTasks", Tasker_V1_ListTasksRequest.with { $0.pageToken = "nope" })
        }
        await harness.stop()
    }
}
