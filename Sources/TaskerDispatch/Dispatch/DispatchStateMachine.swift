import TaskerEngine
import TaskerQueue

/// One attempt of one step.
struct Attempt: Hashable, Sendable {
    let stepID: String
    let attempt: Int32
}

/// What one node's dispatch holds, with no I/O and no clock: its workers' sessions (slots,
/// promised slots, attempts in their hands), the entries read from the queue for them, the
/// results waiting to be recorded and the attempts whose results are on their way to Postgres,
/// and the start transactions underway. Each event (a worker registered, entries read, steps
/// started, a result received, a timer fired, a drain, …) changes it and returns what to do;
/// the `Dispatcher` actor does that. Its invariants, tested as values:
/// - a worker never holds more attempts and promised slots than its slots;
/// - an attempt this node started is in a worker's hands, or its result is unrecorded, or
///   neither (an orphan for the sweeper), never two at once;
/// - an entry read from the queue is buffered, being started, or handed back: a drain never
///   strands one, and a start that failed puts its entries back.
struct DispatchStateMachine {
    /// Transactions recording results at once: two keeps the database busy while one commits;
    /// more make smaller batches that wait on each other's task locks (10,000 diamonds: 1 →
    /// 987 steps/s, 2 → 1,033–1,174, 4 → 761, 8 → 479).
    static let resultRecorderLimit = 2

    private(set) var workers: [String: WorkerSession] = [:]
    /// Entries read from the queue that no worker here had a slot for yet.
    private(set) var buffered: [QueuedStep] = []
    private var pendingResults: [(attempt: Attempt, outcome: StepOutcome)] = []
    private(set) var recorders = 0
    /// Transactions starting steps for workers here whose attempts are not yet in a worker's
    /// hands: the sweeper waits for those it saw before judging an attempt orphaned.
    private(set) var startsUnderway: Set<Int> = []
    private var nextStart = 0
    /// Attempts whose results were accepted and are not yet committed: no worker holds them
    /// any more, but they are not orphans.
    private(set) var unrecorded: Set<Attempt> = []
    private(set) var stopping = false

    enum Action {
        case send(workerID: String, WorkerOutbound)
        /// The attempt is to be failed as timed out after `seconds` unless it finished first.
        case armTimeout(Attempt, seconds: Int)
        /// The step started for a worker that had gone meanwhile: its attempt fails as lost.
        case failLost(StartedStep)
        /// Slots came free: the fetch loop reads for them.
        case wakeFetcher
    }

    /// Results recorded in one transaction, with the free slots held for the steps they unblock.
    struct ResultBatch {
        let results: [(attempt: Attempt, outcome: StepOutcome)]
        /// For each worker, the handlers it runs and how many of its slots are held.
        let held: [(workerID: String, handlers: Set<String>, count: Int)]
        let start: Int
    }

    /// Buffered entries matched with workers that have a slot for them, being started.
    struct StartPlan {
        let starting: [(entry: QueuedStep, workerID: String)]
        let start: Int
        var stepIDs: [String] { starting.map(\.entry.stepID) }
    }

    // MARK: Workers

    mutating func connect(
        workerID: String, name: String, handlers: [String], slots: Int, heartbeatInterval: Double, now: Double
    ) throws(WorkerSession.Refusal) -> [Action] {
        // A node that is stopping takes no new workers: one would hold its stream open.
        guard !stopping else { throw .closed }
        var session = WorkerSession(workerID: workerID, now: now)
        try session.register(name: name, handlers: handlers, slots: slots, now: now)
        workers[workerID] = session
        return [.send(workerID: workerID, .registered(workerID: workerID, heartbeatInterval: heartbeatInterval)), .wakeFetcher]
    }

    /// A heartbeat; true when it is the first to say the worker drains.
    mutating func heartbeat(workerID: String, draining: Bool, now: Double) -> Bool {
        let wasDraining = workers[workerID]?.draining ?? false
        try? workers[workerID]?.heartbeat(draining: draining, now: now)
        return draining && !wasDraining && workers[workerID] != nil
    }

    /// The worker's stream ended: its session, with the attempts it held, which fail as lost.
    mutating func disconnect(workerID: String) -> (session: WorkerSession, held: [Attempt])? {
        guard var session = workers.removeValue(forKey: workerID) else { return nil }
        let held = session.close().map { Attempt(stepID: $0.stepID, attempt: $0.attempt) }
        return (session, held)
    }

    /// Workers that said nothing for longer than `allowance` seconds.
    func silentWorkers(now: Double, allowance: Double) -> [String] {
        workers.filter { $0.value.isSilent(now: now, allowance: allowance) }.map(\.key).sorted()
    }

    /// Stops taking new work: the fetch loop ends, and these workers are to be let go.
    mutating func stop() -> [String] {
        stopping = true
        return workers.keys.sorted()
    }

    // MARK: Results

    enum ResultDisposition: Equatable {
        /// No such worker here.
        case unknownWorker
        /// Not an attempt the worker holds: dropped, and counted.
        case fenced
        /// Waits to be recorded; `startRecorder` when fewer recorders than the limit run, so
        /// one more is to start (otherwise a running one takes it with its next batch).
        case accepted(startRecorder: Bool)
    }

    mutating func received(
        _ attempt: Attempt, outcome: StepOutcome, from workerID: String, now: Double
    ) -> ResultDisposition {
        guard workers[workerID] != nil else { return .unknownWorker }
        guard (try? workers[workerID]?.result(stepID: attempt.stepID, attempt: attempt.attempt, now: now)) == .accepted else {
            return .fenced
        }
        pendingResults.append((attempt, outcome))
        unrecorded.insert(attempt)
        guard recorders < Self.resultRecorderLimit else { return .accepted(startRecorder: false) }
        recorders += 1
        return .accepted(startRecorder: true)
    }

    /// The results that arrived, all that wait, for one transaction, with up to two free slots
    /// held for each; nil when none wait, and the recorder asking stops.
    mutating func nextResultBatch() -> ResultBatch? {
        guard !pendingResults.isEmpty else {
            recorders -= 1
            return nil
        }
        let results = pendingResults
        pendingResults = []
        return ResultBatch(results: results, held: holdSlots(upTo: results.count * 2), start: beginStart())
    }

    /// The batch committed (or failed: `started` is then empty). The steps it started go to the
    /// workers whose slots were held for them; the slots not used are free again.
    mutating func recorded(_ batch: ResultBatch, started: [(step: StartedStep, slot: Int)], now: Double) -> [Action] {
        defer { startsUnderway.remove(batch.start) }
        for (attempt, _) in batch.results { unrecorded.remove(attempt) }
        var actions: [Action] = []
        var unused = batch.held.map(\.count)
        for (step, slot) in started {
            unused[slot] -= 1
            actions += assign(step, to: batch.held[slot].workerID, now: now)
        }
        for (slot, count) in unused.enumerated() {
            for _ in 0..<max(count, 0) { workers[batch.held[slot].workerID]?.unreserve() }
        }
        actions.append(.wakeFetcher)
        return actions
    }

    /// Holds up to `limit` free worker slots, from the workers with the most.
    private mutating func holdSlots(upTo limit: Int) -> [(workerID: String, handlers: Set<String>, count: Int)] {
        var held: [(workerID: String, handlers: Set<String>, count: Int)] = []
        var left = limit
        let byFreeSlots = workers.sorted { ($0.value.freeSlots, $1.key) > ($1.value.freeSlots, $0.key) }
        for (workerID, session) in byFreeSlots where left > 0 {
            var count = 0
            while count < left, let handler = session.handlers.first, workers[workerID]?.reserve(handler) == true {
                count += 1
            }
            if count > 0 { held.append((workerID, session.handlers, count)) }
            left -= count
        }
        return held
    }

    // MARK: From the queue to the workers

    /// Free slots by handler, less what is already buffered for it.
    func wanted() -> [String: Int] {
        var wanted: [String: Int] = [:]
        for session in workers.values where session.freeSlots > 0 {
            for handler in session.handlers { wanted[handler, default: 0] += session.freeSlots }
        }
        for entry in buffered { wanted[entry.handler, default: 0] -= 1 }
        return wanted.filter { $0.value > 0 }
    }

    mutating func read(_ entries: [QueuedStep]) {
        buffered += entries
    }

    /// Matches buffered entries with the workers here that have a slot for them. Entries no
    /// worker here takes any more (it drained or left) are to go back to the queue; the rest
    /// stay buffered.
    mutating func planStarts() -> (plan: StartPlan?, handBack: [QueuedStep]) {
        var starting: [(entry: QueuedStep, workerID: String)] = []
        var waiting: [QueuedStep] = []
        var unwanted: [QueuedStep] = []
        for entry in buffered {
            if let workerID = reserveWorker(for: entry.handler) {
                starting.append((entry, workerID))
            } else if workers.values.contains(where: { $0.takes(entry.handler) }) {
                waiting.append(entry)
            } else {
                unwanted.append(entry)
            }
        }
        buffered = waiting
        guard !starting.isEmpty else { return (nil, unwanted) }
        return (StartPlan(starting: starting, start: beginStart()), unwanted)
    }

    /// The plan's entries at `waiting` (by index) wait in their concurrency keys' lines, out
    /// of this node: their workers' slots are free again. The plan for the rest; nil if none.
    mutating func wait(_ plan: StartPlan, waiting: Set<Int>) -> StartPlan? {
        var left: [(entry: QueuedStep, workerID: String)] = []
        for (index, item) in plan.starting.enumerated() {
            if waiting.contains(index) {
                workers[item.workerID]?.unreserve()
            } else {
                left.append(item)
            }
        }
        guard !left.isEmpty else {
            startsUnderway.remove(plan.start)
            return nil
        }
        return StartPlan(starting: left, start: plan.start)
    }

    /// The start transaction failed (Postgres is unavailable): its entries wait here again.
    mutating func startFailed(_ plan: StartPlan) {
        startsUnderway.remove(plan.start)
        for (entry, workerID) in plan.starting {
            workers[workerID]?.unreserve()
            buffered.append(entry)
        }
    }

    /// The plan's steps that started go to their workers; every entry of the plan is done
    /// with (to acknowledge), started or not (taken already, cancelled, or no such step).
    mutating func started(_ plan: StartPlan, steps: [String: StartedStep], now: Double) -> [Action] {
        defer { startsUnderway.remove(plan.start) }
        var actions: [Action] = []
        var assigned = Set<String>()
        for (entry, workerID) in plan.starting {
            // The same step can sit in the stream twice (put back by a sweeper): one attempt.
            if let step = steps[entry.stepID], assigned.insert(entry.stepID).inserted {
                actions += assign(step, to: workerID, now: now)
            } else {
                workers[workerID]?.unreserve()
            }
        }
        return actions
    }

    /// The worker with the most free slots for the handler, with one slot promised.
    private mutating func reserveWorker(for handler: String) -> String? {
        let candidate = workers.filter { $0.value.handlers.contains(handler) && $0.value.freeSlots > 0 }
            .max { ($0.value.freeSlots, $1.key) < ($1.value.freeSlots, $0.key) }?.key
        guard let workerID = candidate, workers[workerID]?.reserve(handler) == true else { return nil }
        return workerID
    }

    private mutating func assign(_ step: StartedStep, to workerID: String, now: Double) -> [Action] {
        guard workers[workerID]?.assign(stepID: step.stepID, attempt: step.attempt) == true else { return [.failLost(step)] }
        guard step.timeoutSeconds > 0 else { return [.send(workerID: workerID, .assignment(step, deadline: nil))] }
        let seconds = Int(step.timeoutSeconds)
        return [
            .send(workerID: workerID, .assignment(step, deadline: now + Double(seconds))),
            .armTimeout(Attempt(stepID: step.stepID, attempt: step.attempt), seconds: seconds),
        ]
    }

    private mutating func beginStart() -> Int {
        nextStart += 1
        startsUnderway.insert(nextStart)
        return nextStart
    }

    // MARK: Attempts ended elsewhere

    /// Whether a worker here holds the attempt.
    func holds(_ attempt: Attempt) -> Bool {
        workers.values.contains { $0.inFlight[attempt.stepID] == attempt.attempt }
    }

    /// The attempt is over (timed out, its task cancelled): the worker holding it, if it is
    /// here, is told to stop, and its slot is free again.
    mutating func callOff(_ attempt: Attempt, reason: String) -> [Action] {
        var actions: [Action] = []
        for workerID in workers.keys.sorted() where workers[workerID]?.release(stepID: attempt.stepID, attempt: attempt.attempt) == true {
            actions.append(.send(workerID: workerID, .cancel(stepID: attempt.stepID, attempt: attempt.attempt, reason: reason)))
            actions.append(.wakeFetcher)
        }
        return actions
    }

    /// The attempts this node is answerable for: in a worker's hands, or with a result on its
    /// way to Postgres. An attempt this node started that is neither is an orphan.
    var answerable: Set<Attempt> {
        var attempts = unrecorded
        for session in workers.values {
            for (stepID, attempt) in session.inFlight { attempts.insert(Attempt(stepID: stepID, attempt: attempt)) }
        }
        return attempts
    }

    /// Results received and not yet recorded, waiting or in a transaction.
    var resultsUnrecorded: Bool { recorders > 0 || !pendingResults.isEmpty }
}
