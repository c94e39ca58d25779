import Foundation
import Logging
import TaskerEngine
import TaskerProto
import TaskerRPC

/// One StreamStepUpdates call. For a task: its stored history after `after_sequence`, then its
/// live updates, each task's in order with no gap and no duplicate, until the update that
/// finishes the task. For every task (no task id): live updates from now on.
struct StepUpdateStream {
    static let logger = Logger(label: "tasker.updates")
    let engine: TaskEngine
    let hub: UpdateHub
    /// How long a watcher of one task may hear nothing before the stored history is read
    /// for updates that pub/sub lost.
    let quietInterval: Duration

    /// Stored updates read at a time.
    static let page = 500

    func serve(_ request: Tasker_V1_StreamStepUpdatesRequest, _ writer: ResponseWriter<Tasker_V1_StepUpdate>) async throws {
        if request.taskID.isEmpty {
            try await followEveryTask(writer)
            return
        }
        let id = try await TaskerService.mapped { try TaskEngine.taskID(request.taskID) }
        // Subscribed before the history is read, so nothing committed in between is missed.
        let subscription = hub.subscribe(taskID: id)
        defer { subscription.cancel() }
        let progress = try await TaskerService.mapped { try await engine.progress(of: id) }
        guard request.afterSequence <= progress.lastSequence else {
            throw RPCError(.outOfRange, "after_sequence \(request.afterSequence) is past task \(id)'s newest update, \(progress.lastSequence)")
        }
        var sender = OrderedSender(
            order: UpdateOrder(task: id, after: request.afterSequence), engine: engine, writer: writer,
            cutOff: { subscription.ended != nil })
        if request.afterSequence == progress.lastSequence {
            if TaskStatusRule.isFinished(progress.status) { return }
        } else if try await sender.catchUp(id, through: .max) {
            return
        }
        let ticker = Task { [quietInterval] in
            while !Task.isCancelled {
                try? await Task.sleep(for: quietInterval)
                subscription.tick()
            }
        }
        defer { ticker.cancel() }
        var quietSince = ContinuousClock.now
        for await update in subscription.updates {
            // A watcher the hub cut off stops here, with what it was sent: what is still
            // buffered, or a catch-up from the store, would serve it the rest at the pace of
            // a reader that fell behind, and then no reader is ever cut off.
            if subscription.ended != nil { break }
            if update.sequence == 0 {
                subscription.tickTaken()
                // A tick: after a quiet spell, look for what pub/sub may have lost.
                if ContinuousClock.now - quietSince >= quietInterval, try await sender.catchUp(id, through: .max) { return }
                continue
            }
            quietSince = ContinuousClock.now
            if try await sender.receive(update) { return }
        }
        let resume = "call again with after_sequence = \(sender.order.expected(id).map { $0 - 1 } ?? request.afterSequence) to resume"
        try ended(subscription, resume: resume)
        // Only the update that finishes the task ends the stream OK.
        throw RPCError(Task.isCancelled ? .cancelled : .unavailable, "the updates stopped before the task finished; \(resume)")
    }

    /// The error a watcher whose updates the hub ended is given.
    private func ended(_ subscription: UpdateSubscription, resume: String) throws {
        switch subscription.ended {
        case .fellBehind:
            Self.logger.warning("watcher cut off", metadata: [
                "task": .string(subscription.taskID ?? "every task"), "buffer": .stringConvertible(hub.bufferLimit)])
            throw RPCError(.resourceExhausted, "the watcher fell more than \(hub.bufferLimit) updates behind and was cut off; \(resume)")
        case .serverStopping:
            throw RPCError(.unavailable, "the server is shutting down; \(resume)")
        case nil:
            return
        }
    }

    private func followEveryTask(_ writer: ResponseWriter<Tasker_V1_StepUpdate>) async throws {
        let subscription = hub.subscribe(taskID: nil)
        defer { subscription.cancel() }
        var sender = OrderedSender(
            order: UpdateOrder(everyTask: 10_000), engine: engine, writer: writer, cutOff: { subscription.ended != nil })
        for await update in subscription.updates where update.sequence > 0 {
            if subscription.ended != nil { break }
            // Whether it finished its task does not matter here: other tasks go on.
            _ = try await sender.receive(update)
        }
        try ended(subscription, resume: "watch each task of interest with its last sequence seen to resume without a gap")
    }
}

/// What one watcher has been sent, and the sending: each task's updates in order, with the
/// stored history read for any gap.
private struct OrderedSender {
    private(set) var order: UpdateOrder
    let engine: TaskEngine
    let writer: ResponseWriter<Tasker_V1_StepUpdate>
    /// Whether the last update sent finished its task. An earlier one in the history may
    /// have too (an ERROR later retried, say): a task's stream ends only on the newest.
    private var finished = false
    /// Whether the hub has cut the watcher off: reading the store stops then too.
    let cutOff: @Sendable () -> Bool

    init(order: UpdateOrder, engine: TaskEngine, writer: ResponseWriter<Tasker_V1_StepUpdate>, cutOff: @escaping @Sendable () -> Bool) {
        self.order = order
        self.engine = engine
        self.writer = writer
        self.cutOff = cutOff
    }

    /// Sends the task's stored updates after the last one sent, up to `through`; true when
    /// the newest of them finished the task.
    mutating func catchUp(_ taskID: String, through: UInt64) async throws -> Bool {
        while !cutOff(), let expected = order.expected(taskID), expected <= through {
            let batch = try await TaskerService.mapped { [engine] in
                try await engine.history(of: taskID, after: expected - 1, through: through, limit: StepUpdateStream.page)
            }
            for update in batch { try await send(update) }
            if batch.count < StepUpdateStream.page { break }
        }
        return finished
    }

    /// A live update, after any that were missed before it; true when it finished its task.
    mutating func receive(_ update: Tasker_V1_StepUpdate) async throws -> Bool {
        switch order.admit(update) {
        case .duplicate:
            return false
        case .gap(_, let before):
            _ = try await catchUp(update.taskID, through: before - 1)
            try await send(update)
        case .deliver:
            try await send(update)
        }
        return finished
    }

    private mutating func send(_ update: Tasker_V1_StepUpdate) async throws {
        guard order.admit(update) == .deliver else { return }
        try await writer.write(update)
        order.delivered(update)
        finished = TaskStatusRule.isFinished(update.taskStatus)
    }
}
