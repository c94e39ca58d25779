import SwiftProtobuf
import Testing

@testable import TaskerDispatch
@testable import TaskerEngine
@testable import TaskerQueue

/// Dispatch's bookkeeping as a value: every event and its actions, with no Postgres, Redis or
/// clock. Time is a number each event carries.
struct DispatchStateMachineTests {
    static func entry(_ stepID: String, _ handler: String = "pay") -> QueuedStep {
        QueuedStep(handler: handler, stepID: stepID, entryID: "0-\(stepID)")
    }

    static func started(_ stepID: String, attempt: Int32 = 1, handler: String = "pay", timeout: Int32 = 0) -> StartedStep {
        StartedStep(
            stepID: stepID, taskID: "t", taskName: "n", stepName: stepID, handler: handler, attempt: attempt,
            context: Google_Protobuf_Struct(), dependencyResults: [:], timeoutSeconds: timeout)
    }

    static let success = StepOutcome.success(results: Google_Protobuf_Struct(), annotations: [])

    /// A machine with the workers given, each registered at time 0.
    static func machine(_ workers: [(id: String, handlers: [String], slots: Int)]) throws -> DispatchStateMachine {
        var machine = DispatchStateMachine()
        for worker in workers {
            _ = try machine.connect(workerID: worker.id, name: worker.id, handlers: worker.handlers, slots: worker.slots, heartbeatInterval: 1, now: 0)
        }
        return machine
    }

    /// No worker holds more attempts and promised slots than it has slots.
    static func withinSlots(_ machine: DispatchStateMachine) -> Bool {
        machine.workers.values.allSatisfy { $0.inFlight.count + $0.reserved <= $0.slots }
    }

    /// The assignments among the actions, by worker.
    static func assignments(_ actions: [DispatchStateMachine.Action]) -> [(workerID: String, stepID: String, deadline: Double?)] {
        actions.compactMap { action in
            guard case .send(let workerID, .assignment(let step, let deadline)) = action else { return nil }
            return (workerID, step.stepID, deadline)
        }
    }

    @Test func aRegisteredWorkerIsToldItsIdAndTheFetcherWoken() throws {
        var machine = DispatchStateMachine()
        let actions = try machine.connect(workerID: "w", name: "n", handlers: ["pay"], slots: 2, heartbeatInterval: 1.5, now: 0)
        guard case .send("w", .registered("w", 1.5)) = actions.first, case .wakeFetcher = actions.last else {
            Issue.record("expected registered, then a wake: \(actions)")
            return
        }
        #expect(machine.wanted() == ["pay": 2])
        #expect(throws: WorkerSession.Refusal.noHandlers) {
            try machine.connect(workerID: "x", name: "n", handlers: [""], slots: 1, heartbeatInterval: 1, now: 0)
        }
        #expect(machine.workers["x"] == nil, "a refused registration leaves no session")
    }

    @Test func aWorkerNeverHoldsMoreThanItsSlots() throws {
        var machine = try Self.machine([("w", ["pay"], 2)])
        machine.read((1...5).map { Self.entry("s\($0)") })
        #expect(machine.wanted().isEmpty, "five entries buffered cover the two free slots")
        let (plan, handBack) = machine.planStarts()
        #expect(handBack.isEmpty)
        #expect(plan?.stepIDs == ["s1", "s2"] && machine.buffered.map(\.stepID) == ["s3", "s4", "s5"])
        #expect(Self.withinSlots(machine) && machine.workers["w"]?.reserved == 2)
        let actions = machine.started(plan!, steps: ["s1": Self.started("s1"), "s2": Self.started("s2")], now: 10)
        #expect(Self.assignments(actions).map(\.stepID) == ["s1", "s2"])
        #expect(Self.withinSlots(machine) && machine.workers["w"]?.inFlight.count == 2 && machine.workers["w"]?.reserved == 0)
        let (none, _) = machine.planStarts()
        #expect(none == nil && machine.buffered.count == 3, "no slot: the rest wait here")

        // A result frees one slot; its batch holds it for what the result unblocks.
        let disposition = machine.received(Attempt(stepID: "s1", attempt: 1), outcome: Self.success, from: "w", now: 11)
        #expect(disposition == .accepted(startRecorder: true))
        let batchOptional = machine.nextResultBatch()
        let batch = try #require(batchOptional)
        #expect(batch.held.map(\.count) == [1], "two asked for, one free")
        #expect(Self.withinSlots(machine))
        let after = machine.recorded(batch, started: [(Self.started("s9"), 0)], now: 12)
        #expect(Self.assignments(after).map(\.stepID) == ["s9"])
        #expect(Self.withinSlots(machine) && machine.workers["w"]?.inFlight.count == 2)
    }

    @Test func anAttemptIsHeldOrUnrecordedOrNeitherNeverTwo() throws {
        var machine = try Self.machine([("w", ["pay"], 1)])
        machine.read([Self.entry("s1")])
        let planOptional = machine.planStarts().plan
        let plan = try #require(planOptional)
        #expect(machine.startsUnderway == [plan.start], "underway until the attempt is in the worker's hands")
        _ = machine.started(plan, steps: ["s1": Self.started("s1")], now: 0)
        #expect(machine.startsUnderway.isEmpty)
        let attempt = Attempt(stepID: "s1", attempt: 1)
        #expect(machine.holds(attempt) && !machine.unrecorded.contains(attempt) && machine.answerable == [attempt])

        let first = machine.received(attempt, outcome: Self.success, from: "w", now: 1)
        #expect(first == .accepted(startRecorder: true))
        #expect(!machine.holds(attempt) && machine.unrecorded.contains(attempt) && machine.answerable == [attempt])
        let second = machine.received(attempt, outcome: Self.success, from: "w", now: 1)
        #expect(second == .fenced, "a second result")
        let another = machine.received(Attempt(stepID: "s1", attempt: 7), outcome: Self.success, from: "w", now: 1)
        #expect(another == .fenced, "another attempt")
        let stranger = machine.received(attempt, outcome: Self.success, from: "nobody", now: 1)
        #expect(stranger == .unknownWorker)

        let batchOptional = machine.nextResultBatch()
        let batch = try #require(batchOptional)
        #expect(machine.resultsUnrecorded && machine.unrecorded.contains(attempt), "unrecorded while its transaction runs")
        _ = machine.recorded(batch, started: [], now: 2)
        #expect(machine.answerable.isEmpty && machine.workers["w"]?.reserved == 0, "the held slot is free again")
        let none = machine.nextResultBatch()
        #expect(none == nil && !machine.resultsUnrecorded, "the recorder stops")
    }

    @Test func recordersAreBoundedAndEachBatchTakesAllThatWaits() throws {
        var machine = try Self.machine([("w", ["pay"], 4)])
        machine.read((1...4).map { Self.entry("s\($0)") })
        let planOptional = machine.planStarts().plan
        let plan = try #require(planOptional)
        _ = machine.started(plan, steps: Dictionary(uniqueKeysWithValues: (1...4).map { ("s\($0)", Self.started("s\($0)")) }), now: 0)
        let starts = (1...4).map { machine.received(Attempt(stepID: "s\($0)", attempt: 1), outcome: Self.success, from: "w", now: 1) }
        #expect(starts == [.accepted(startRecorder: true), .accepted(startRecorder: true), .accepted(startRecorder: false), .accepted(startRecorder: false)])
        let firstOptional = machine.nextResultBatch()
        let first = try #require(firstOptional)
        #expect(first.results.map(\.attempt.stepID) == ["s1", "s2", "s3", "s4"])
        let forSecond = machine.nextResultBatch()
        #expect(forSecond == nil && machine.recorders == 1, "the second recorder finds nothing and stops")
        _ = machine.recorded(first, started: [], now: 2)
        let afterFirst = machine.nextResultBatch()
        #expect(afterFirst == nil && machine.recorders == 0)
    }

    @Test func aDrainNeverStrandsAReadEntry() throws {
        var machine = try Self.machine([("w1", ["pay"], 1), ("w2", ["pay", "ship"], 1)])
        machine.read([Self.entry("p1"), Self.entry("p2"), Self.entry("p3"), Self.entry("h1", "ship")])
        let firstOptional = machine.planStarts().plan
        let first = try #require(firstOptional)
        #expect(first.starting.count == 2 && machine.buffered.map(\.stepID) == ["p3", "h1"])
        _ = machine.started(first, steps: [:], now: 0)
        // w2, the only worker of ship, drains: its entry goes back to the queue; pay's waits for w1.
        let drains = machine.heartbeat(workerID: "w2", draining: true, now: 1)
        let again = machine.heartbeat(workerID: "w2", draining: true, now: 1)
        let stranger = machine.heartbeat(workerID: "nobody", draining: true, now: 1)
        #expect(drains && !again && !stranger, "a worker starts draining once")
        let (plan, handBack) = machine.planStarts()
        #expect(handBack.map(\.stepID) == ["h1"])
        #expect(plan?.starting.map(\.workerID) == ["w1"] && machine.buffered.isEmpty, "p3 to w1, whose slot came free")
        // With w1 gone too, nothing here takes pay: what is read goes back at once.
        _ = machine.disconnect(workerID: "w1")
        machine.read([Self.entry("p4")])
        let last = machine.planStarts()
        #expect(last.handBack.map(\.stepID) == ["p4"] && last.plan == nil && machine.buffered.isEmpty)
    }

    @Test func aFailedStartPutsItsEntriesBackAndFreesItsSlots() throws {
        var machine = try Self.machine([("w", ["pay"], 2)])
        machine.read([Self.entry("s1"), Self.entry("s2")])
        let planOptional = machine.planStarts().plan
        let plan = try #require(planOptional)
        machine.startFailed(plan)
        #expect(machine.buffered.map(\.stepID) == ["s1", "s2"] && machine.workers["w"]?.reserved == 0 && machine.startsUnderway.isEmpty)
        let again = machine.planStarts()
        #expect(again.plan?.stepIDs == ["s1", "s2"], "tried again")
    }

    @Test func aStepTakenElsewhereOrTwiceInTheStreamIsOneAttemptAtMost() throws {
        var machine = try Self.machine([("w", ["pay"], 3)])
        machine.read([Self.entry("s1"), Self.entry("s1"), Self.entry("gone")])
        let planOptional = machine.planStarts().plan
        let plan = try #require(planOptional)
        let actions = machine.started(plan, steps: ["s1": Self.started("s1")], now: 0)
        #expect(Self.assignments(actions).map(\.stepID) == ["s1"])
        #expect(machine.workers["w"]?.inFlight.count == 1 && machine.workers["w"]?.reserved == 0)
    }

    @Test func aStepStartedForAWorkerThatLeftFailsAsLost() throws {
        var machine = try Self.machine([("w", ["pay"], 1)])
        machine.read([Self.entry("s1")])
        let planOptional = machine.planStarts().plan
        let plan = try #require(planOptional)
        let leftOptional = machine.disconnect(workerID: "w")
        let left = try #require(leftOptional)
        #expect(left.held.isEmpty)
        let actions = machine.started(plan, steps: ["s1": Self.started("s1")], now: 0)
        guard actions.count == 1, case .failLost(let step) = actions[0] else {
            Issue.record("expected the attempt to fail as lost: \(actions)")
            return
        }
        #expect(step.stepID == "s1")
    }

    @Test func aWorkerThatLeavesGivesUpWhatItHeld() throws {
        var machine = try Self.machine([("w", ["pay"], 2)])
        machine.read([Self.entry("s2"), Self.entry("s1")])
        let planOptional = machine.planStarts().plan
        let plan = try #require(planOptional)
        _ = machine.started(plan, steps: ["s1": Self.started("s1", attempt: 3), "s2": Self.started("s2")], now: 0)
        let leftOptional = machine.disconnect(workerID: "w")
        let left = try #require(leftOptional)
        #expect(left.held == [Attempt(stepID: "s1", attempt: 3), Attempt(stepID: "s2", attempt: 1)])
        let twice = machine.disconnect(workerID: "w")
        #expect(machine.answerable.isEmpty && twice == nil)
    }

    @Test func aStepWithATimeoutIsSentItsDeadlineAndATimerArmed() throws {
        var machine = try Self.machine([("w", ["pay"], 1)])
        machine.read([Self.entry("s1")])
        let planOptional = machine.planStarts().plan
        let plan = try #require(planOptional)
        let actions = machine.started(plan, steps: ["s1": Self.started("s1", attempt: 2, timeout: 30)], now: 100)
        #expect(Self.assignments(actions).map(\.deadline) == [130])
        guard case .armTimeout(let attempt, let seconds) = actions.last else {
            Issue.record("expected a timer: \(actions)")
            return
        }
        #expect(attempt == Attempt(stepID: "s1", attempt: 2) && seconds == 30)
    }

    @Test func anAttemptCalledOffIsCancelledOnItsWorkerAndItsSlotFreed() throws {
        var machine = try Self.machine([("w", ["pay"], 1)])
        machine.read([Self.entry("s1")])
        let planOptional = machine.planStarts().plan
        let plan = try #require(planOptional)
        _ = machine.started(plan, steps: ["s1": Self.started("s1")], now: 0)
        let elsewhere = machine.callOff(Attempt(stepID: "s1", attempt: 2), reason: "x")
        #expect(elsewhere.isEmpty, "not the attempt the worker holds")
        let actions = machine.callOff(Attempt(stepID: "s1", attempt: 1), reason: "timed out after 5 s")
        guard case .send("w", .cancel("s1", 1, "timed out after 5 s")) = actions.first else {
            Issue.record("expected a cancel to the worker: \(actions)")
            return
        }
        #expect(!machine.holds(Attempt(stepID: "s1", attempt: 1)) && machine.wanted() == ["pay": 1])
        let late = machine.received(Attempt(stepID: "s1", attempt: 1), outcome: Self.success, from: "w", now: 1)
        #expect(late == .fenced, "its late result is fenced")
    }

    @Test func aWorkerSilentPastItsAllowanceIsFound() throws {
        var machine = try Self.machine([("a", ["pay"], 1), ("b", ["pay"], 1)])
        _ = machine.heartbeat(workerID: "b", draining: false, now: 2)
        #expect(machine.silentWorkers(now: 3, allowance: 3).isEmpty)
        #expect(machine.silentWorkers(now: 3.5, allowance: 3) == ["a"])
        #expect(machine.silentWorkers(now: 5.5, allowance: 3) == ["a", "b"])
    }

    @Test func stoppingLetsEveryWorkerGo() throws {
        var machine = try Self.machine([("b", ["pay"], 1), ("a", ["pay"], 1)])
        #expect(!machine.stopping)
        let leaving = machine.stop()
        #expect(leaving == ["a", "b"] && machine.stopping)
        #expect(throws: WorkerSession.Refusal.closed, "a stopping node takes no new worker") {
            try machine.connect(workerID: "c", name: "c", handlers: ["pay"], slots: 1, heartbeatInterval: 1, now: 0)
        }
    }
}
