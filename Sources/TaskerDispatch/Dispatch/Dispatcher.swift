import Foundation
import Logging
import ServiceLifecycle
import TaskerEngine
import TaskerMetrics
import TaskerProto
import TaskerQueue

/// One node's dispatch: the workers connected here, the steps read for them from the queue
/// and started through the engine, their results, heartbeats and timeouts, and the loops that
/// keep the queue in step with Postgres (due retries, lost entries, lost nodes). It knows
/// nothing of sockets: the Workers service feeds it a stream's messages and sends what it
/// puts in each worker's outbox.
public actor Dispatcher: StepChangeObserver, RateWaitSource, LimitedStartGate, Service {
    public nonisolated let nodeID: String
    public nonisolated let nodeName: String
    let engine: TaskEngine
    let queue: StepQueue
    let configuration: DispatchConfiguration
    private let clock: any UnixClock
    private let logger: Logger

    /// What this node's dispatch holds; this actor does what its events call for.
    private var state = DispatchStateMachine()
    /// Each connected worker's way down its stream.
    private var outboxes: [String: AsyncStream<WorkerOutbound>.Continuation] = [:]
    private var capacityWaiter: CheckedContinuation<Void, Never>?
    /// The rate wake's sleep, and when it ends (Unix seconds).
    private var rateSleep: Task<Void, Never>?
    private var rateWakeDue = Double.infinity
    private var signals: ChannelSubscription?
    /// Timeouts armed for attempts in workers' hands, timed by `run()`.
    private let timeouts: AsyncStream<(attempt: Attempt, seconds: Int)>
    private let armTimeout: AsyncStream<(attempt: Attempt, seconds: Int)>.Continuation
    /// Results dropped by fencing: for a step or attempt the worker does not hold.
    public private(set) var fencedResults = 0
    /// Waits for the state to change (a start handed over, results recorded).
    private var waiters: [CheckedContinuation<Void, Never>] = []

    public init(
        engine: TaskEngine, queue: StepQueue, nodeName: String = "", configuration: DispatchConfiguration = .init(),
        clock: any UnixClock = SystemUnixClock()
    ) {
        self.engine = engine
        self.queue = queue
        nodeID = queue.consumer
        self.nodeName = nodeName
        self.configuration = configuration
        self.clock = clock
        var logger = Logger(label: "tasker.dispatch")
        logger[metadataKey: "node"] = .string(queue.consumer)
        self.logger = logger
        (timeouts, armTimeout) = AsyncStream.makeStream(of: (attempt: Attempt, seconds: Int).self)
    }

    /// Joins the cluster: the engine tells this dispatcher of every transition from now on, the
    /// node says it is alive, and other nodes' signals reach it. `run()` then does the work.
    public func start() async {
        engine.observe(self)
        engine.explainRateWaits(with: self)
        engine.startLimitedSteps(through: self)
        try? await engine.heartbeat(node: nodeID, name: nodeName)
        signals = queue.subscribeToSignals { [weak self] signal in
            guard let self else { return }
            Task { await self.handle(signal) }
        }
        await signals?.waitUntilSubscribed()
    }

    /// The dispatcher's life, as a `Service`: it reads the queue for its workers, takes due
    /// retries, sweeps, drops silent workers, says the node is alive and times attempts out,
    /// each a child task, until graceful shutdown (or cancellation). Then the results already
    /// received are recorded, every worker's stream is ended (its running attempts fail as lost,
    /// to run elsewhere) and the node leaves the cluster.
    public func run() async {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.fetchLoop() }
            group.addTask { await self.repeating(every: self.configuration.retryPollInterval) { await $0.takeDueRetries() } }
            group.addTask { await self.wakeRateParkedSteps() }
            group.addTask { await self.repeating(every: self.configuration.sweepInterval) { await $0.sweep() } }
            // Checked twice an interval, so a silent worker is dropped within half an interval
            // of its allowance running out.
            group.addTask { await self.repeating(every: self.configuration.heartbeatInterval / 2) { await $0.dropSilentWorkers() } }
            // Apart from the sweep, so that a slow sweep never makes this node look lost.
            group.addTask { await self.repeating(every: self.configuration.nodeHeartbeatInterval) { await $0.keepAlive() } }
            group.addTask { await self.timeOutAttempts() }
            try? await gracefulShutdown()
            // Results already received are recorded before the node goes.
            _ = await wait(atMost: 10) { !state.resultsUnrecorded }
            stopTakingWork()
            group.cancelAll()
        }
        await leave()
    }

    private func stopTakingWork() {
        _ = state.stop()
        capacityWaiter?.resume()
        capacityWaiter = nil
    }

    /// Ends every worker's stream (their running attempts fail as lost) and leaves the cluster.
    private func leave() async {
        await signals?.cancel()
        for workerID in state.stop() {
            outboxes[workerID]?.yield(.end("the server is shutting down"))
            await disconnected(workerID)
        }
        try? await engine.forget(node: nodeID)
        reportCapacity()
    }

    /// Each timeout armed, a child task that fails its attempt as timed out unless it ended first.
    private func timeOutAttempts() async {
        await withDiscardingTaskGroup { group in
            for await (attempt, seconds) in timeouts {
                group.addTask { [clock] in
                    do {
                        try await clock.sleep(for: .seconds(seconds))
                    } catch {
                        return
                    }
                    await self.timeOut(attempt.stepID, attempt: attempt.attempt, after: seconds)
                }
            }
        }
    }

    public var connectedWorkers: Int { state.workers.count }

    /// What this node holds right now: attempts sent to its workers and not yet answered,
    /// slots promised to steps being started, entries read from the queue and not yet sent,
    /// and results not yet recorded. All are zero once the node is idle.
    public struct Load: Equatable, Sendable {
        public var inFlight = 0
        public var reserved = 0
        public var buffered = 0
        public var unrecordedResults = 0

        public init() {}
    }

    public var load: Load {
        var load = Load()
        load.inFlight = state.workers.values.reduce(0) { $0 + $1.inFlight.count }
        load.reserved = state.workers.values.reduce(0) { $0 + $1.reserved }
        load.buffered = state.buffered.count
        load.unrecordedResults = state.unrecorded.count
        return load
    }

    // MARK: Worker sessions

    /// A worker registered: its templates are registered, and it is sent WorkerRegistered.
    /// Returns its id.
    public func connect(_ registration: Tasker_V1_RegisterWorker, outbox: AsyncStream<WorkerOutbound>.Continuation) async throws(EngineError) -> String {
        try InputCheck.registration(registration)
        for template in registration.templates {
            _ = try await engine.registerTemplate(template)
        }
        let workerID = UUID().uuidString.lowercased()
        let actions: [DispatchStateMachine.Action]
        do {
            actions = try state.connect(
                workerID: workerID, name: registration.name, handlers: registration.handlers, slots: Int(registration.slots),
                heartbeatInterval: configuration.heartbeatInterval, now: now())
        } catch .closed {
            throw .unavailable("the server is shutting down: connect again to reach another node")
        } catch {
            throw .invalidArgument("RegisterWorker names no handlers: a worker must run at least one")
        }
        outboxes[workerID] = outbox
        if let session = state.workers[workerID] { logger.info("worker connected", metadata: Self.metadata(of: session)) }
        reportWorkersSoon()
        await perform(actions)
        return workerID
    }

    public func heartbeat(_ heartbeat: Tasker_V1_Heartbeat, from workerID: String) {
        guard state.heartbeat(workerID: workerID, draining: heartbeat.draining, now: now()),
              let session = state.workers[workerID]
        else { return }
        var metadata = Self.metadata(of: session)
        metadata["in_flight"] = .stringConvertible(session.inFlight.count)
        logger.info("worker draining", metadata: metadata)
        // What was read for it and waits here may have to go elsewhere.
        if !state.buffered.isEmpty { Task { await self.dispatchBuffered() } }
    }

    /// A StepResult from a worker: recorded when the worker holds that attempt, dropped
    /// (and counted) when it does not.
    public func received(_ result: Tasker_V1_StepResult, from workerID: String) async {
        let outcome: StepOutcome
        switch result.outcome {
        case .success(let success):
            outcome = .success(results: success.results, annotations: success.annotations)
        case .failure(let failure):
            outcome = .failure(message: failure.message, retryable: failure.retryable, backoffRequestSeconds: max(failure.backoffRequestSeconds, 0))
        case nil:
            outcome = .failure(message: "the worker sent a result with neither success nor failure", retryable: true, backoffRequestSeconds: 0)
        }
        let attempt = Attempt(stepID: result.stepID, attempt: result.attempt)
        switch state.received(attempt, outcome: outcome, from: workerID, now: now()) {
        case .unknownWorker:
            return
        case .fenced:
            fencedResults += 1
            TaskerMetric.fencedResults().increment()
            logger.debug("result dropped", metadata: ["step": .string(result.stepID), "attempt": .stringConvertible(result.attempt)])
        case .accepted(let startRecorder):
            wakeFetcher()
            // Not awaited: the worker's stream goes on to its next message while this one
            // waits for a transaction, so results from one worker are recorded together. What
            // waits is bounded by the slots of the workers here.
            if startRecorder { Task { await self.recordResults() } }
        }
    }

    /// Records the results that arrived, all that are waiting in one transaction: while one
    /// batch commits, the next gathers.
    private func recordResults() async {
        defer { wakeWaiters() }
        while let batch = state.nextResultBatch() {
            let engine = self.engine
            let logger = self.logger
            let node = nodeID
            // Slots held for the steps these results unblock, started in the same transaction.
            let slots = batch.held.map { (handlers: $0.handlers, count: $0.count) }
            // Not a child of any stream's handler: recorded whatever becomes of the streams.
            let started = await Task { () -> [(step: StartedStep, slot: Int)] in
                let items = batch.results.map { (stepID: $0.attempt.stepID, attempt: $0.attempt.attempt, outcome: $0.outcome) }
                do {
                    let (answers, started) = try await engine.finishSteps(items, startingInto: slots, node: node)
                    // A result the engine cannot store still ends the attempt, so the step never hangs.
                    let refused = zip(items, answers).compactMap { item, answer -> (stepID: String, attempt: Int32, outcome: StepOutcome)? in
                        guard case .failure(.invalidArgument(let reason)) = answer else { return nil }
                        return (item.stepID, item.attempt, .failure(
                            message: "the worker's result was refused: \(reason)", retryable: true, backoffRequestSeconds: 0))
                    }
                    if !refused.isEmpty { _ = try await engine.finishSteps(refused) }
                    return started
                } catch {
                    logger.warning("results not recorded", metadata: ["count": .stringConvertible(items.count), "error": .string("\(error)")])
                    return []
                }
            }.value
            await perform(state.recorded(batch, started: started, now: now()))
            wakeWaiters()
        }
    }

    /// The worker's stream ended: the attempts it held fail, retryably. `lost`: why it was
    /// cut off, for the log; nil when it left.
    public func disconnected(_ workerID: String, lost: String? = nil) async {
        outboxes.removeValue(forKey: workerID)?.finish()
        guard let (session, held) = state.disconnect(workerID: workerID) else { return }
        var metadata = Self.metadata(of: session)
        metadata["attempts_lost"] = .stringConvertible(held.count)
        if let lost {
            metadata["reason"] = .string(lost)
            logger.warning("worker lost", metadata: metadata)
        } else {
            logger.info("worker left", metadata: metadata)
        }
        reportWorkersSoon()
        // The caller is often the stream's handler, cancelled because the stream was reset;
        // the failures must be recorded all the same, so they do not inherit that.
        await Task { [engine] in
            for attempt in held {
                _ = try? await engine.finishStep(
                    attempt.stepID, attempt: attempt.attempt,
                    outcome: .lost(message: "the worker running this step went away"))
            }
        }.value
        if !state.buffered.isEmpty { await dispatchBuffered() }
    }

    private func dropSilentWorkers() async {
        let missed = configuration.missedHeartbeats
        let allowance = configuration.heartbeatInterval * Double(missed)
        for workerID in state.silentWorkers(now: now(), allowance: allowance) {
            let reason = "no heartbeat from the worker for \(missed) intervals of \(configuration.heartbeatInterval) s"
            outboxes[workerID]?.yield(.end(reason))
            await disconnected(workerID, lost: reason)
        }
    }

    // MARK: From the queue to the workers

    private func fetchLoop() async {
        while !state.stopping, !Task.isCancelled {
            // Entries read earlier that found no free slot (held for a result's transaction,
            // say) go first: what is wanted from the queue counts them as taken, so without
            // this they would wait for a read that is never made.
            if !state.buffered.isEmpty { await dispatchBuffered() }
            let wanted = state.wanted()
            if wanted.isEmpty {
                await waitForCapacity()
                continue
            }
            do {
                state.read(try await queue.read(wanted))
            } catch {
                logger.warning("queue read failed", metadata: ["error": .string("\(error)")])
                try? await clock.sleep(for: .milliseconds(200))
                continue
            }
            await dispatchBuffered()
        }
    }

    /// Waits until slots may have come free: every change of state that frees one wakes it (a
    /// result received or recorded, a worker connected, an attempt called off, a start done).
    /// A wake while the loop is busy elsewhere is not needed: it reads the state afresh first.
    private func waitForCapacity() async {
        await withCheckedContinuation { continuation in
            if state.stopping { continuation.resume(); return }
            capacityWaiter?.resume()
            capacityWaiter = continuation
        }
    }

    private func wakeFetcher() {
        capacityWaiter?.resume()
        capacityWaiter = nil
    }

    /// Starts every buffered step a worker here has a slot for, concurrently, and sends each
    /// to its worker; entries whose steps were taken or gone are acknowledged too.
    private func dispatchBuffered() async {
        // Slots held for entries that did not start (taken already, waiting in a line, or
        // Postgres or Redis unavailable) are free again when it returns, whoever called it.
        defer { wakeFetcher() }
        let (planned, unwanted) = state.planStarts()
        if !unwanted.isEmpty { await handBack(unwanted) }
        guard let planned, let plan = await admit(planned) else { return }
        let engine = self.engine
        let node = nodeID
        let ids = plan.stepIDs
        let started: [String: StartedStep]
        do {
            started = try await Task { try await engine.startSteps(ids, node: node) }.value
        } catch {
            // Postgres is unavailable: the entries wait here and are tried again.
            state.startFailed(plan)
            wakeWaiters()
            logger.warning("steps not started", metadata: ["count": .stringConvertible(ids.count), "error": .string("\(error)")])
            return
        }
        await perform(state.started(plan, steps: started, now: now()))
        wakeWaiters()
        do {
            try await queue.acknowledge(plan.starting.map(\.entry))
        } catch {
            // Unacknowledged entries are dropped later as abandoned; their steps have moved on.
            logger.warning("acknowledge failed", metadata: ["error": .string("\(error)")])
        }
    }

    /// The plan without its steps whose concurrency keys are full or whose rate limits have no
    /// room: those wait out of the queue, in their keys' lines or parked until their limits have
    /// room, and their workers' slots are free again. nil when none is left.
    private func admit(_ plan: DispatchStateMachine.StartPlan) async -> DispatchStateMachine.StartPlan? {
        guard plan.starting.contains(where: { $0.entry.isLimited }) else { return plan }
        let admission: Admission
        do {
            admission = try await queue.admit(plan.starting.map(\.entry))
        } catch {
            // Redis is unavailable: the entries wait here and are tried again.
            state.startFailed(plan)
            wakeWaiters()
            logger.warning("concurrency and rate limits not checked", metadata: ["error": .string("\(error)")])
            try? await clock.sleep(for: .milliseconds(200))
            return nil
        }
        if let room = admission.nextRoom { wakeRateParkedSooner(in: room) }
        guard !admission.waiting.isEmpty else { return plan }
        let left = state.wait(plan, waiting: admission.waiting)
        wakeWaiters()
        return left
    }

    /// Entries read for a worker that has since drained or gone, when no other worker here
    /// takes their handler: they go back to the end of their streams at once, for a node that
    /// can run them, rather than wait here for the sweeper.
    private func handBack(_ entries: [QueuedStep]) async {
        do {
            try await queue.enqueue(entries.map(\.ready))
            try await queue.acknowledge(entries)
            logger.debug("handed steps back to the queue", metadata: ["count": .stringConvertible(entries.count)])
        } catch {
            // The sweeper puts back what the queue lost.
            logger.warning("steps not handed back", metadata: ["count": .stringConvertible(entries.count), "error": .string("\(error)")])
        }
    }

    /// Does what dispatch's state calls for.
    private func perform(_ actions: [DispatchStateMachine.Action]) async {
        for action in actions {
            switch action {
            case .send(let workerID, let item):
                outboxes[workerID]?.yield(item)
            case .armTimeout(let attempt, let seconds):
                armTimeout.yield((attempt, seconds))
            case .failLost(let step):
                _ = try? await engine.finishStep(
                    step.stepID, attempt: step.attempt,
                    outcome: .lost(message: "the worker went away before the step reached it"))
            case .wakeFetcher:
                wakeFetcher()
            }
        }
    }

    private func timeOut(_ stepID: String, attempt: Int32, after seconds: Int) async {
        guard state.holds(Attempt(stepID: stepID, attempt: attempt)) else { return }
        guard (try? await engine.timeOut(stepID, attempt: attempt, after: seconds)) == true else { return }
        await callOff(stepID, attempt: attempt, reason: Self.timedOut(after: seconds))
    }

    static func timedOut(after seconds: Int) -> String { "timed out after \(seconds) s" }

    /// Tells the worker holding the attempt, if it is here, to stop; its slot is free again.
    private func callOff(_ stepID: String, attempt: Int32, reason: String) async {
        await perform(state.callOff(Attempt(stepID: stepID, attempt: attempt), reason: reason))
    }

    // MARK: Transitions, retries, signals

    public nonisolated func stepsChanged(_ changes: [StepChange]) async {
        // A step started in the transaction that enqueued it goes to its worker, not the queue.
        let startedAtOnce = Set(changes.filter { $0.status == .inProgress }.compactMap(\.stepID))
        let ready = changes.compactMap { change -> ReadyStep? in
            guard change.status == .enqueued, let stepID = change.stepID, !startedAtOnce.contains(stepID), let handler = change.handler else { return nil }
            return Self.ready(handler: handler, stepID: stepID, priority: change.priority, concurrency: change.concurrency, rateLimits: change.rateLimits)
        }
        // An attempt that ended, or a step that left the queue, gives back its key's place.
        let released = changes.compactMap { change -> (stepID: String, limit: ConcurrencyLimit)? in
            guard let concurrency = change.concurrency, let stepID = change.stepID, change.status != .inProgress,
                  change.previous == .inProgress || change.previous == .enqueued else { return nil }
            return (stepID, Self.limit(concurrency))
        }
        let retries = changes.compactMap { change in
            change.status == .waitingForRetry ? change.retryAt.flatMap { at in change.stepID.map { (stepID: $0, at: at) } } : nil
        }
        let calledOff = changes.filter { $0.status == .cancelled && $0.previous == .inProgress && $0.stepID != nil }
        do {
            try await queue.update(ready: ready, released: released, retries: retries)
            for change in calledOff {
                // A step cancelled with a reason (its task timed out) tells the worker that reason.
                var reason = NodeSignal.cancelledTask
                if case .object(let error) = change.errorJSON.flatMap(JSONValue.init(parsing:)), case .string(let message) = error["message"] {
                    reason = message
                }
                try await queue.publish(.callOff(stepID: change.stepID!, attempt: change.attempt, reason: reason))
            }
        } catch {
            // Postgres has it all: the sweeper gives the queue what it missed.
            logger.warning("queue not told of transitions", metadata: ["error": .string("\(error)")])
        }
    }

    /// A delayed task's first steps wait in the set of retries until its start.
    public nonisolated func stepsDelayed(_ steps: [DelayedStep]) async {
        do {
            try await queue.scheduleRetries(steps.map { (stepID: $0.stepID, at: $0.at) })
        } catch {
            // The sweeper finds them in Postgres when they fall due.
            logger.warning("queue not told of delayed steps", metadata: ["error": .string("\(error)")])
        }
    }

    private func handle(_ signal: NodeSignal) async {
        switch signal {
        case .callOff(let stepID, let attempt, let reason): await callOff(stepID, attempt: attempt, reason: reason)
        }
    }

    /// Lets rate-parked steps go when their limits have room: at each retry poll, and sooner
    /// when this node parked a step whose room comes before that.
    private func wakeRateParkedSteps() async {
        let poll = Duration.milliseconds(Int(configuration.retryPollInterval * 1000))
        while !Task.isCancelled, !state.stopping {
            var delay = poll
            do {
                let (woken, next) = try await queue.wakeRateParked(limit: Self.rateWakeBatch)
                if woken >= Self.rateWakeBatch { continue }
                if let next { delay = min(delay, next) }
            } catch {
                logger.debug("rate-parked steps not woken", metadata: ["error": .string("\(error)")])
            }
            rateWakeDue = now() + delay.seconds
            let sleep = Task { [clock] in _ = try? await clock.sleep(for: delay) }
            rateSleep = sleep
            await withTaskCancellationHandler { await sleep.value } onCancel: { sleep.cancel() }
            rateSleep = nil
        }
    }

    private static let rateWakeBatch = 500

    /// Ends the rate wake's sleep when a step parked here has room before it would end.
    private func wakeRateParkedSooner(in delay: Duration) {
        guard now() + delay.seconds < rateWakeDue else { return }
        rateWakeDue = now() + delay.seconds
        rateSleep?.cancel()
    }

    public nonisolated func rateWaits(_ stepIDs: [String]) async -> [String: (key: String, at: Double)] {
        (try? await queue.rateWaits(stepIDs)) ?? [:]
    }

    public nonisolated func admitAtOnce(_ steps: [LimitedStart]) async -> Set<String> {
        do {
            return try await queue.admitAtOnce(steps.map { ($0.stepID, $0.concurrency.map(Self.limit), $0.rateLimits?.encoded) })
        } catch {
            logger.warning("concurrency and rate limits not checked", metadata: ["error": .string("\(error)")])
            return []
        }
    }

    /// Rates spent stay spent: only a start the limit never saw would be worse.
    public nonisolated func giveBack(_ steps: [LimitedStart]) async {
        let places = steps.compactMap { step in step.concurrency.map { (stepID: step.stepID, limit: Self.limit($0)) } }
        do {
            try await queue.release(places)
        } catch {
            // The sweeper gives back a place whose step neither runs nor waits in the queue.
            logger.warning("concurrency places not given back", metadata: ["error": .string("\(error)")])
        }
    }

    private func takeDueRetries() async {
        do {
            let due = try await queue.takeDueRetries(now: now())
            if !due.isEmpty { try await engine.enqueueDueRetries(stepIDs: due) }
        } catch {
            logger.debug("due retries not taken", metadata: ["error": .string("\(error)")])
        }
    }

    // MARK: Sweeping

    /// Says this node is alive, and fails the attempts of nodes that have not said so for
    /// `nodeTimeout`, so that their steps run elsewhere.
    private func keepAlive() async {
        do {
            try await tellClusterOfWorkers()
            repaired("lost_node_attempts", try await engine.failStepsOfLostNodes(unseenFor: configuration.nodeTimeout))
        } catch {
            // A node that is stopping has its database calls cancelled: nothing to warn of.
            guard !state.stopping, !Task.isCancelled else { return }
            logger.warning("node heartbeat failed", metadata: ["error": .string("\(error)")])
        }
    }

    /// Puts right what a lost queue entry, a timeout or a lost retry left behind, from Postgres.
    func sweep() async {
        do {
            let timedOut = try await engine.failTimedOutSteps()
            for (stepID, attempt, seconds) in timedOut {
                try? await queue.publish(.callOff(stepID: stepID, attempt: attempt, reason: Self.timedOut(after: seconds)))
            }
            repaired("timed_out_attempts", timedOut.count)
            repaired("timed_out_tasks", try await engine.timeOutTasks())
            repaired("unstarted_attempts", try await engine.failUnstartedSteps())
            repaired("due_retries", try await engine.enqueueDueRetries(limit: 500))
            repaired("orphaned_attempts", try await failOrphanedAttempts())
            repaired("lost_queue_entries", try await requeueLostSteps())
            repaired("concurrency_places", try await reconcileLimits())
            repaired("task_places", try await engine.admitWaitingTasks())
            await reportQueues()
        } catch is CancellationError {
            // The node is stopping.
        } catch {
            logger.warning("sweep incomplete", metadata: ["error": .string("\(error)")])
        }
    }

    /// Attempts this node started that no worker here holds (a result lost with its stream,
    /// a start whose answer never came back): failed, retryably, so they run again. The grace
    /// covers a start whose assignment is still on its way.
    private func failOrphanedAttempts() async throws -> Int {
        // An attempt's start time is its transaction's beginning: a start transaction slowed
        // past the grace must reach its worker before the attempt is judged. Those begun
        // later started after the cutoff and are not read.
        let before = state.startsUnderway
        let attempts = try await engine.stepsInProgress(node: nodeID, startedBefore: now() - max(configuration.queueGrace, 2))
        guard !attempts.isEmpty else { return 0 }
        guard await wait(atMost: 30, until: { state.startsUnderway.isDisjoint(with: before) }) else { return 0 }
        let answerable = state.answerable
        var failed = 0
        for attempt in attempts where !answerable.contains(Attempt(stepID: attempt.stepID, attempt: attempt.attempt)) {
            if try await engine.finishStep(
                attempt.stepID, attempt: attempt.attempt,
                outcome: .lost(message: "the attempt was lost on its way to or from the worker")) {
                failed += 1
            }
        }
        return failed
    }

    /// Steps ENQUEUED longer than the grace that their handler's stream (of their priority)
    /// no longer holds: the stream is gone, or it has delivered everything, or entries added
    /// after them.
    private func requeueLostSteps() async throws -> Int {
        let waiting = try await engine.stepsQueued(before: now() - configuration.queueGrace)
        var lost: [String] = []
        for (queued, steps) in Dictionary(grouping: waiting, by: { StreamOfSteps(handler: $0.handler, priority: $0.priority) }) {
            let stream = try await queue.state(of: queued.handler, priority: queued.priority)
            if !stream.exists || stream.undelivered == 0 {
                lost += steps.map(\.stepID)
            } else {
                let delivered = Double(stream.lastDeliveredMilliseconds) / 1000 - configuration.queueGrace
                lost += steps.filter { $0.queuedAt < delivered }.map(\.stepID)
            }
        }
        for handler in Set(waiting.map(\.handler)) {
            try await queue.dropAbandoned(of: handler, idleMilliseconds: Int(configuration.abandonedDeliveryAge * 1000))
        }
        // A step waiting in its concurrency key's line, or parked for a rate limit, has left its stream on purpose.
        let parked = try await queue.parked(lost)
        let requeued = try await engine.requeue(lost.filter { !parked.contains($0) })
        try await queue.enqueue(requeued.map {
            Self.ready(handler: $0.handler, stepID: $0.stepID, priority: $0.priority, concurrency: $0.concurrency, rateLimits: $0.rateLimits)
        })
        return requeued.count
    }

    /// Places of concurrency keys held by steps that neither run nor are about to (their
    /// release was lost) are given back; running steps whose places Redis lost hold them again.
    private func reconcileLimits() async throws -> Int {
        let keys = try await queue.limitedKeys(settling: max(configuration.queueGrace, 2))
        var stale: [(stepID: String, limit: ConcurrencyLimit)] = []
        var held = Set<String>()
        for (key, holders, _) in keys where !holders.isEmpty {
            let holding = try await engine.stepsHoldingPlaces(holders)
            held.formUnion(holders)
            // The key's limit is only needed to let the next go: tidyLimits below reads it from the line.
            stale += holders.filter { !holding.contains($0) }.map { ($0, ConcurrencyLimit(key: key, maxRunning: 0)) }
        }
        let running = try await engine.runningLimitedSteps().filter { !held.contains($0.stepID) }
        try await queue.reconcile(stale: stale, running: running.map { ($0.stepID, Self.limit($0.concurrency)) })
        try await queue.tidyLimits()
        return stale.count + running.count
    }

    static func limit(_ concurrency: StepConcurrency) -> ConcurrencyLimit {
        ConcurrencyLimit(key: concurrency.key, maxRunning: concurrency.maxRunning)
    }

    /// A step for its stream, with the limits admission checks.
    static func ready(handler: String, stepID: String, priority: Int, concurrency: StepConcurrency?, rateLimits: StepRateLimits?) -> ReadyStep {
        ReadyStep(handler: handler, stepID: stepID, priority: priority, limit: concurrency.map(limit), rates: rateLimits?.encoded)
    }

    private struct StreamOfSteps: Hashable {
        let handler: String
        let priority: Int
    }

    /// Counts and logs what a sweep put right.
    private func repaired(_ kind: String, _ count: Int) {
        guard count > 0 else { return }
        TaskerMetric.sweeperRepairs(kind).increment(by: count)
        logger.info("sweeper repaired", metadata: ["kind": .string(kind), "count": .stringConvertible(count)])
    }

    /// Handlers whose ready gauge was set, so that an emptied queue reads zero.
    private var reportedQueues: Set<String> = []

    /// tasker_queue_ready: the cluster's ENQUEUED steps by handler (every node reports the same).
    private func reportQueues() async {
        guard let queues = try? await engine.listQueues(liveWithin: configuration.nodeTimeout) else { return }
        let ready = Dictionary(queues.map { ($0.handler, Int($0.ready)) }, uniquingKeysWith: +)
        for handler in reportedQueues.union(ready.keys) { TaskerMetric.queueReady(handler).record(ready[handler] ?? 0) }
        reportedQueues.formUnion(ready.keys)
    }

    private func repeating(every seconds: Double, _ body: @escaping @Sendable (Dispatcher) async -> Void) async {
        while !Task.isCancelled {
            try? await clock.sleep(for: .milliseconds(Int(seconds * 1000)))
            if Task.isCancelled { return }
            await body(self)
        }
    }

    private func now() -> Double { clock.now.seconds }

    /// Waits until `condition` holds, woken by each change of state that may make it hold;
    /// false when `seconds` passed first or the task was cancelled.
    private func wait(atMost seconds: Double, until condition: () -> Bool) async -> Bool {
        let deadline = now() + seconds
        let alarm = Task { [clock] in
            try? await clock.sleep(for: .milliseconds(Int(seconds * 1000)))
            self.wakeWaiters()
        }
        defer { alarm.cancel() }
        return await withTaskCancellationHandler {
            while !condition() {
                guard now() < deadline, !Task.isCancelled else { return false }
                await withCheckedContinuation { waiters.append($0) }
            }
            return true
        } onCancel: {
            Task { await self.wakeWaiters() }
        }
    }

    private func wakeWaiters() {
        let waking = waiters
        waiters = []
        for waiter in waking { waiter.resume() }
    }

    static func metadata(of session: WorkerSession) -> Logger.Metadata {
        ["worker": .string(session.workerID), "worker_name": .string(session.name), "handlers": .string(session.handlers.sorted().joined(separator: ",")),
         "slots": .stringConvertible(session.slots)]
    }

    /// A worker came or went since the cluster was last told.
    private var reportDue = false

    /// Tells the cluster of this node's workers soon (once, for a burst of comings and
    /// goings), rather than at the next node heartbeat.
    private func reportWorkersSoon() {
        guard !reportDue, !state.stopping else { return }
        reportDue = true
        Task {
            try? await clock.sleep(for: .milliseconds(100))
            await self.reportWorkers()
        }
    }

    private func reportWorkers() async {
        guard reportDue, !state.stopping else { return }
        do {
            try await tellClusterOfWorkers()
        } catch {
            logger.debug("workers not reported", metadata: ["error": .string("\(error)")])
        }
    }

    /// This node is alive with these workers: its row in `tasker_nodes`, and its worker gauges.
    /// A failed write is made again at the next node heartbeat.
    private func tellClusterOfWorkers() async throws {
        reportDue = false
        reportCapacity()
        try await engine.heartbeat(node: nodeID, name: nodeName, workers: state.workers.values.compactMap(\.report))
    }

    /// Handlers whose gauges were set, so that one whose last worker left goes to zero.
    private var reportedHandlers: Set<String> = []

    /// tasker_workers_connected and tasker_worker_slots, for this node's workers.
    private func reportCapacity() {
        var connected: [String: Int] = [:]
        var busy: [String: Int] = [:]
        var free: [String: Int] = [:]
        for session in state.workers.values where session.report != nil {
            for handler in session.handlers {
                connected[handler, default: 0] += 1
                busy[handler, default: 0] += session.inFlight.count + session.reserved
                free[handler, default: 0] += session.freeSlots
            }
        }
        for handler in reportedHandlers.union(connected.keys) {
            TaskerMetric.workersConnected(handler).record(connected[handler] ?? 0)
            TaskerMetric.workerSlots(handler, "busy").record(busy[handler] ?? 0)
            TaskerMetric.workerSlots(handler, "free").record(free[handler] ?? 0)
        }
        reportedHandlers.formUnion(connected.keys)
    }
}
