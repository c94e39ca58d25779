import Testing

@testable import TaskerDispatch

struct WorkerSessionTests {
    func registered(slots: Int = 2, handlers: [String] = ["pay", "ship"]) throws -> WorkerSession {
        var session = WorkerSession(workerID: "w", now: 0)
        try session.register(name: "n", handlers: handlers, slots: slots, now: 0)
        return session
    }

    @Test func registrationComesOnceAndNamesHandlers() throws {
        var session = WorkerSession(workerID: "w", now: 0)
        #expect(session.state == .awaitingRegistration && session.freeSlots == 0)
        #expect(throws: WorkerSession.Refusal.noHandlers) { try session.register(name: "n", handlers: ["", ""], slots: 2, now: 0) }
        #expect(throws: WorkerSession.Refusal.notRegistered) { try session.heartbeat(draining: false, now: 1) }
        #expect(throws: WorkerSession.Refusal.notRegistered) { _ = try session.result(stepID: "s", attempt: 1, now: 1) }
        try session.register(name: "n", handlers: ["pay", ""], slots: 0, now: 0)
        #expect(session.state == .registered && session.handlers == ["pay"] && session.freeSlots == 1, "at least one slot")
        #expect(throws: WorkerSession.Refusal.alreadyRegistered) { try session.register(name: "n", handlers: ["pay"], slots: 2, now: 0) }
    }

    @Test func slotsAreReservedThenTakenAndNeverExceeded() throws {
        var session = try registered()
        let unknown = session.reserve("unknown")
        #expect(!unknown, "a handler it does not run")
        let pay = session.reserve("pay"), ship = session.reserve("ship")
        #expect(pay && ship)
        let third = session.reserve("pay")
        #expect(!third, "both slots promised")
        session.unreserve()
        #expect(session.freeSlots == 1)
        let assigned = session.assign(stepID: "s1", attempt: 1)
        #expect(assigned)
        #expect(session.freeSlots == 1 && session.inFlight == ["s1": 1])
        let again = session.reserve("pay"), second = session.assign(stepID: "s2", attempt: 3)
        #expect(again && second)
        let over = session.reserve("pay")
        #expect(session.freeSlots == 0 && !over)
    }

    @Test func onlyTheHeldAttemptIsAccepted() throws {
        var session = try registered()
        _ = session.reserve("pay")
        _ = session.assign(stepID: "s1", attempt: 2)
        let other = try session.result(stepID: "other", attempt: 2, now: 1)
        let wrongAttempt = try session.result(stepID: "s1", attempt: 1, now: 1)
        let held = try session.result(stepID: "s1", attempt: 2, now: 1)
        let twice = try session.result(stepID: "s1", attempt: 2, now: 1)
        #expect(other == .fenced && wrongAttempt == .fenced)
        #expect(held == .accepted)
        #expect(twice == .fenced, "a second result")
        #expect(session.freeSlots == 2)
    }

    @Test func aReleasedAttemptFreesItsSlotOnce() throws {
        var session = try registered()
        _ = session.reserve("pay")
        _ = session.assign(stepID: "s1", attempt: 1)
        let wrong = session.release(stepID: "s1", attempt: 2)
        let right = session.release(stepID: "s1", attempt: 1)
        let again = session.release(stepID: "s1", attempt: 1)
        #expect(!wrong && right && !again)
        let late = try session.result(stepID: "s1", attempt: 1, now: 1)
        #expect(late == .fenced, "its late result")
    }

    @Test func drainingTakesNoMoreAndStaysDraining() throws {
        var session = try registered()
        _ = session.reserve("pay")
        _ = session.assign(stepID: "s1", attempt: 1)
        try session.heartbeat(draining: true, now: 1)
        let reserved = session.reserve("pay")
        #expect(session.draining && session.freeSlots == 0 && !reserved)
        try session.heartbeat(draining: false, now: 2)
        #expect(session.draining, "draining is for the rest of the stream")
        let finished = try session.result(stepID: "s1", attempt: 1, now: 3)
        #expect(finished == .accepted, "what it holds it may finish")
    }

    @Test func silenceIsMeasuredFromTheLastMessage() throws {
        var session = try registered()
        #expect(!session.isSilent(now: 0.5, allowance: 0.6))
        #expect(session.isSilent(now: 0.7, allowance: 0.6))
        try session.heartbeat(draining: false, now: 0.7)
        #expect(!session.isSilent(now: 1.2, allowance: 0.6))
        _ = session.reserve("pay")
        _ = session.assign(stepID: "s", attempt: 1)
        _ = try session.result(stepID: "s", attempt: 1, now: 1.5)
        #expect(!session.isSilent(now: 2.0, allowance: 0.6), "a result counts as a sign of life")
        #expect(!WorkerSession(workerID: "new", now: 0).isSilent(now: 100, allowance: 1), "only registered workers are timed")
    }

    @Test func closingHandsBackWhatItHeldAndRefusesEverythingAfter() throws {
        var session = try registered()
        _ = session.reserve("pay")
        _ = session.assign(stepID: "b", attempt: 1)
        _ = session.reserve("ship")
        _ = session.assign(stepID: "a", attempt: 4)
        _ = session.reserve("pay")
        let held = session.close()
        #expect(held.map(\.stepID) == ["a", "b"] && held.map(\.attempt) == [4, 1])
        #expect(session.state == .closed && session.freeSlots == 0 && session.reserved == 0)
        let late = session.assign(stepID: "c", attempt: 1)
        #expect(!late, "a start that finished after the close")
        #expect(throws: WorkerSession.Refusal.closed) { _ = try session.result(stepID: "a", attempt: 4, now: 1) }
        #expect(throws: WorkerSession.Refusal.closed) { try session.heartbeat(draining: false, now: 1) }
        #expect(throws: WorkerSession.Refusal.closed) { try session.register(name: "n", handlers: ["pay"], slots: 1, now: 1) }
        let again = session.close()
        #expect(again.isEmpty)
    }
}
