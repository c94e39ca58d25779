/// A step with a concurrency or rate limit that a result made ready, as the queue's limits see it.
public struct LimitedStart: Sendable, Equatable {
    public let stepID: String
    public let concurrency: StepConcurrency?
    public let rateLimits: StepRateLimits?
}

/// What the engine asks before it starts a step with limits in the transaction that records its
/// dependency's result, as it starts a step without: the queue, which keeps the limits and which
/// the engine does not know.
public protocol LimitedStartGate: Sendable {
    /// Those of `steps` that may start now ahead of no one: their concurrency keys have a free
    /// place and no line, their rate limits have room and no step is parked for one. Each of
    /// those holds its place and has spent its rates; the others are left as they were, to go
    /// through the queue. None when the queue cannot be asked: they all go through it then.
    func admitAtOnce(_ steps: [LimitedStart]) async -> Set<String>
    /// Gives back the places `admitAtOnce` took for steps whose transaction did not commit.
    func giveBack(_ steps: [LimitedStart]) async
}

/// The steps a transaction recording results starts itself, into the free worker slots its
/// caller holds (each the handlers it takes and how many), so that a step goes from its
/// dependency's result to its worker in one commit, without a round through the queue. A step
/// with limits is set aside with a slot, for the queue to admit before it starts.
struct ChainedStarts {
    private var free: [(handlers: Set<String>, count: Int)]
    private(set) var started: [(step: StartedStep, slot: Int)] = []
    /// Steps with limits that have a slot set aside: their task's place in the transaction's
    /// tasks, their own in their task, and the slot.
    private(set) var limited: [(task: Int, step: Int, slot: Int, start: LimitedStart)] = []
    /// Whether steps with limits are set aside at all (no gate: they go through the queue).
    private let admitsLimited: Bool

    init(into slots: [(handlers: Set<String>, count: Int)], admitsLimited: Bool) {
        free = slots
        self.admitsLimited = admitsLimited
    }

    /// Starts the steps of `task` (the transaction's `taskIndex`th) that went ENQUEUED in this
    /// transaction, while a slot takes their handler; sets aside those with limits.
    mutating func startReady(in task: inout LockedTask, at taskIndex: Int) throws(EngineError) {
        for index in task.steps.indices where task.steps[index].machine.status == .enqueued && task.steps[index].queued {
            let step = task.steps[index]
            let hasLimits = step.concurrency != nil || step.rateLimits != nil
            guard !hasLimits || admitsLimited, !limited.contains(where: { $0.start.stepID == step.stepID }),
                  let slot = free.firstIndex(where: { $0.count > 0 && $0.handlers.contains(step.handler) })
            else { continue }
            if hasLimits {
                free[slot].count -= 1
                limited.append((taskIndex, index, slot, LimitedStart(stepID: step.stepID, concurrency: step.concurrency, rateLimits: step.rateLimits)))
            } else if (try? task.apply(.start, to: index)) != nil {
                free[slot].count -= 1
                started.append((try TaskEngine.assignment(of: index, in: task), slot))
            }
        }
    }

    /// Starts the steps set aside that the queue admitted; the others stay ENQUEUED, for the queue.
    mutating func startAdmitted(_ admitted: Set<String>, in tasks: inout [LockedTask]) throws(EngineError) {
        for item in limited where admitted.contains(item.start.stepID) {
            guard (try? tasks[item.task].apply(.start, to: item.step)) != nil else { continue }
            started.append((try TaskEngine.assignment(of: item.step, in: tasks[item.task]), item.slot))
        }
    }
}
