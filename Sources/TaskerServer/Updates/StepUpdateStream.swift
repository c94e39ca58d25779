import Foundation
import TaskerEngine
import TaskerProto
import TaskerRPC

/// One StreamStepUpdates call. For a task: its stored history after `after_sequence`, then its
/// live updates, each task's in order with no gap and no duplicate, until the update that
/// finishes the task. For every task (no task id): live updates from now on.
struct StepUpdateStream {
    let engine: TaskEngine
    let hub: UpdateHub
    /// How long a watcher of one task may hear nothing before the stored history is read
    /// for updates that pub/sub lost.
    let quietInterval: Duration

    private static let page = 500

    func serve(_ request: Tasker_V1_StreamStepUpdatesRequest, _ writer: ResponseWriter<Tasker_V1_StepUpdate>) async throws {
        if request.taskID.isEmpty {
            try await followEveryTask(writer)
            return
        }
        guard let id = UUID(uuidString: request.taskID)?.uuidString.lowercased() else {
            throw RPCError(.invalidArgument, "task_id '\(request.taskID)' is not a UUID")
        }
        // Subscribed before the history is read, so nothing committed in between is missed.
        let subscription = hub.subscribe(taskID: id)
        defer { subscription.cancel() }
        let progress = try await TaskerService.mapped { try await engine.progress(of: id) }
        guard request.afterSequence <= progress.lastSequence else {
            throw RPCError(.outOfRange, "after_sequence \(request.afterSequence) is past task \(id)'s newest update, \(progress.lastSequence)")
        }
        var watch = TaskWatch(id: id, order: UpdateOrder(task: id, after: request.afterSequence), engine: engine, writer: writer)
        if request.afterSequence == progress.lastSequence {
            if TaskStatusRule.isFinished(progress.status) { return }
        } else if try await watch.catchUp(through: .max) {
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
            if update.sequence == 0 {
                // A tick: after a quiet spell, look for what pub/sub may have lost.
                if ContinuousClock.now - quietSince >= quietInterval, try await watch.catchUp(through: .max) { return }
                continue
            }
            quietSince = ContinuousClock.now
            if try await watch.receive(update) { return }
        }
        let resume = "call again with after_sequence = \(watch.order.expected(id).map { $0 - 1 } ?? request.afterSequence) to resume"
        try ended(subscription, resume: resume)
        // Only the update that finishes the task ends the stream OK.
        throw RPCError(Task.isCancelled ? .cancelled : .unavailable, "the updates stopped before the task finished; \(resume)")
    }

    /// The error a watcher whose updates the hub ended is given.
    private func ended(_ subscription: UpdateSubscription, resume: String) throws {
        switch subscription.ended {
        case .fellBehind:
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
        var order = UpdateOrder(everyTask: 10_000)
        for await update in subscription.updates where update.sequence > 0 {
            switch order.admit(update) {
            case .duplicate:
                continue
            case .gap(let after, let before):
                for missing in try await TaskerService.mapped({ try await engine.history(of: update.taskID, after: after, through: before - 1, limit: Int(min(before - after, 10_000))) })
                where order.admit(missing) == .deliver {
                    try await writer.write(missing)
                    order.delivered(missing)
                }
                guard order.admit(update) == .deliver else { continue }
            case .deliver:
                break
            }
            try await writer.write(update)
            order.delivered(update)
        }
        try ended(subscription, resume: "watch each task of interest with its last sequence seen to resume without a gap")
    }
}

/// The updates of one watched task sent so far, and the sending.
private struct TaskWatch {
    let id: String
    var order: UpdateOrder
    let engine: TaskEngine
    let writer: ResponseWriter<Tasker_V1_StepUpdate>
    /// Whether the last update sent finished the task. An earlier one in the history may
    /// have too (an ERROR later retried, say): the stream ends only on the newest.
    private var finished = false

    init(id: String, order: UpdateOrder, engine: TaskEngine, writer: ResponseWriter<Tasker_V1_StepUpdate>) {
        self.id = id
        self.order = order
        self.engine = engine
        self.writer = writer
    }

    /// Sends the stored updates after the last one sent, up to `through`; true when the
    /// newest of them finished the task.
    mutating func catchUp(through: UInt64) async throws -> Bool {
        while let expected = order.expected(id), expected <= through {
            let batch = try await TaskerService.mapped { [id, engine] in
                try await engine.history(of: id, after: expected - 1, through: through, limit: 500)
            }
            for update in batch { try await send(update) }
            if batch.count < 500 { break }
        }
        return finished
    }

    /// A live update; true when it finished the task.
    mutating func receive(_ update: Tasker_V1_StepUpdate) async throws -> Bool {
        switch order.admit(update) {
        case .duplicate:
            return false
        case .gap(_, let before):
            _ = try await catchUp(through: before - 1)
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
