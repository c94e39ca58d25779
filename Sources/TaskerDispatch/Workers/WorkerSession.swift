import TaskerEngine

/// One connected worker as dispatch sees it: registration, then assignments up to its slots
/// and the results that free them, until the stream ends. A value with an explicit state, so
/// every edge is decided here and tested on its own.
struct WorkerSession {
    enum State: Equatable {
        case awaitingRegistration
        case registered
        case closed
    }

    /// What became of a StepResult.
    enum ResultDisposition: Equatable {
        /// The worker held that attempt: the engine records the outcome.
        case accepted
        /// Not an attempt this worker holds (unknown step, a wrong or finished attempt, or a
        /// second result): dropped, it must never overwrite a newer state.
        case fenced
    }

    enum Refusal: Error, Equatable {
        case notRegistered
        case alreadyRegistered
        case noHandlers
        case closed
    }

    let workerID: String
    private(set) var state: State = .awaitingRegistration
    private(set) var name = ""
    private(set) var handlers: Set<String> = []
    private(set) var slots = 0
    /// Attempts sent and not yet answered, by step id.
    private(set) var inFlight: [String: Int32] = [:]
    /// Slots promised to steps being started for this worker.
    private(set) var reserved = 0
    private(set) var lastSeen: Double
    let connectedAt: Double
    /// The worker is shutting down: it finishes what it holds and is sent nothing new.
    private(set) var draining = false

    init(workerID: String, now: Double) {
        self.workerID = workerID
        lastSeen = now
        connectedAt = now
    }

    /// The worker as its node reports it to the cluster; nil before it registered.
    var report: WorkerReport? {
        guard state == .registered else { return nil }
        return WorkerReport(
            workerID: workerID, name: name, handlers: handlers.sorted(), slots: slots, inFlight: inFlight.count, draining: draining,
            connectedAt: connectedAt, lastHeartbeatAt: lastSeen)
    }

    /// Whether this worker takes steps of `handler` now (it may have no free slot).
    func takes(_ handler: String) -> Bool { state == .registered && !draining && handlers.contains(handler) }

    var freeSlots: Int { state == .registered && !draining ? max(slots - inFlight.count - reserved, 0) : 0 }

    mutating func register(name: String, handlers: [String], slots: Int, now: Double) throws(Refusal) {
        switch state {
        case .awaitingRegistration:
            let named = Set(handlers.filter { !$0.isEmpty })
            guard !named.isEmpty else { throw .noHandlers }
            self.name = name
            self.handlers = named
            self.slots = max(slots, 1)
            lastSeen = now
            state = .registered
        case .registered: throw .alreadyRegistered
        case .closed: throw .closed
        }
    }

    /// Promises a slot to a step of `handler` about to start; false when there is none.
    mutating func reserve(_ handler: String) -> Bool {
        guard handlers.contains(handler), freeSlots > 0 else { return false }
        reserved += 1
        return true
    }

    /// The promised slot is not needed (the step was taken elsewhere).
    mutating func unreserve() {
        reserved = max(reserved - 1, 0)
    }

    /// The started attempt takes its promised slot; false when the session closed meanwhile.
    mutating func assign(stepID: String, attempt: Int32) -> Bool {
        reserved = max(reserved - 1, 0)
        guard state == .registered else { return false }
        inFlight[stepID] = attempt
        return true
    }

    mutating func result(stepID: String, attempt: Int32, now: Double) throws(Refusal) -> ResultDisposition {
        guard state == .registered else { throw state == .closed ? .closed : .notRegistered }
        lastSeen = now
        guard inFlight[stepID] == attempt else { return .fenced }
        inFlight[stepID] = nil
        return .accepted
    }

    /// A heartbeat; once it says the worker is draining, the worker stays draining.
    mutating func heartbeat(draining: Bool, now: Double) throws(Refusal) {
        guard state == .registered else { throw state == .closed ? .closed : .notRegistered }
        lastSeen = now
        if draining { self.draining = true }
    }

    /// The attempt was ended elsewhere (timed out, cancelled): the slot is free, and whether
    /// this worker held it (and must be told to stop).
    mutating func release(stepID: String, attempt: Int32) -> Bool {
        guard inFlight[stepID] == attempt else { return false }
        inFlight[stepID] = nil
        return true
    }

    /// Whether nothing was heard for longer than `allowance` seconds.
    func isSilent(now: Double, allowance: Double) -> Bool {
        state == .registered && now - lastSeen > allowance
    }

    /// The stream ended: the attempts it held, which fail as the loss of their worker.
    mutating func close() -> [(stepID: String, attempt: Int32)] {
        state = .closed
        reserved = 0
        defer { inFlight.removeAll() }
        return inFlight.map { ($0.key, $0.value) }.sorted { $0.stepID < $1.stepID }
    }
}
