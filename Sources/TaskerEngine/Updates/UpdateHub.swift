import Foundation
import NIOConcurrencyHelpers
import TaskerMetrics
import TaskerProto

/// Hands every transition this node learns of (its own, once committed, and other nodes',
/// through a relay) to the watchers subscribed here. Each watcher has a bounded buffer: one
/// that falls further behind is cut off rather than held in memory without end.
public final class UpdateHub: StepChangeObserver, Sendable {
    /// Updates a watcher may have waiting before it is cut off.
    public let bufferLimit: Int

    private struct Watchers {
        var byTask: [String: [Int: UpdateSubscription]] = [:]
        var everyTask: [Int: UpdateSubscription] = [:]
        var nextID = 0
        var count: Int { everyTask.count + byTask.values.reduce(0) { $0 + $1.count } }
        /// A task with no watcher left has no entry, so this needs no count.
        var isEmpty: Bool { everyTask.isEmpty && byTask.isEmpty }
    }

    private let watchers = NIOLockedValueBox(Watchers())
    private let forwarder = NIOLockedValueBox<(any UpdateForwarder)?>(nil)

    public init(bufferLimit: Int = 4096) {
        self.bufferLimit = max(bufferLimit, 1)
    }

    /// Where this node's own updates go besides its watchers: to other nodes' hubs.
    public func relay(to forwarder: any UpdateForwarder) {
        self.forwarder.withLockedValue { $0 = forwarder }
    }

    public var watcherCount: Int { watchers.withLockedValue { $0.count } }

    /// Ends every watcher's updates (the node is stopping); each is told why.
    public func closeAll() {
        let all = watchers.withLockedValue { watchers in
            watchers.everyTask.values + watchers.byTask.values.flatMap(\.values)
        }
        for subscription in all { subscription.end(.serverStopping) }
    }

    /// Starts following one task's updates (or every task's, with nil) from now on.
    public func subscribe(taskID: String?) -> UpdateSubscription {
        let (stream, continuation) = AsyncStream.makeStream(of: Tasker_V1_StepUpdate.self, bufferingPolicy: .bufferingOldest(bufferLimit))
        let subscription = watchers.withLockedValue { watchers -> UpdateSubscription in
            let id = watchers.nextID
            watchers.nextID += 1
            let subscription = UpdateSubscription(id: id, taskID: taskID, updates: stream, continuation: continuation)
            if let taskID {
                watchers.byTask[taskID, default: [:]][id] = subscription
            } else {
                watchers.everyTask[id] = subscription
            }
            return subscription
        }
        continuation.onTermination = { [weak self] _ in self?.remove(subscription) }
        forwarder.withLockedValue { $0 }?.watcherSubscribed()
        TaskerMetric.stepUpdateWatchers().increment()
        return subscription
    }

    private func remove(_ subscription: UpdateSubscription) {
        TaskerMetric.stepUpdateWatchers().decrement()
        watchers.withLockedValue { watchers in
            if let taskID = subscription.taskID {
                watchers.byTask[taskID]?[subscription.id] = nil
                if watchers.byTask[taskID]?.isEmpty == true { watchers.byTask[taskID] = nil }
            } else {
                watchers.everyTask[subscription.id] = nil
            }
        }
    }

    public func stepsChanged(_ changes: [StepChange]) async {
        let now = Date().timeIntervalSince1970
        let forwarder = forwarder.withLockedValue { $0 }
        let forwarding = forwarder?.othersWatching == true
        // Made into messages only when someone watches them: any task's, when another node
        // has watchers; here, only the watched tasks'.
        let watched = forwarding ? changes : watchers.withLockedValue { watchers in
            watchers.everyTask.isEmpty ? changes.filter { watchers.byTask[$0.taskID] != nil } : changes
        }
        guard !watched.isEmpty else { return }
        // One that cannot be made is left out: its watchers see the gap and read it from the
        // store, which reports what is wrong with it.
        let updates = watched.compactMap { try? $0.update(occurredAt: now) }
        deliver(updates)
        if forwarding { forwarder?.forward(updates) }
    }

    /// Gives each update to the watchers of its task and of every task.
    ///
    /// The watchers are read under the hub's lock and given their updates outside it. A yield
    /// resumes the watcher's task under the concurrency runtime's lock of that task, and a
    /// watcher being cancelled holds that runtime lock while its termination handler takes the
    /// hub's lock to remove it: yielding under the hub's lock took the two in opposite orders,
    /// which deadlocked both threads of a two-core machine and so every task of the server.
    public func deliver(_ updates: [Tasker_V1_StepUpdate]) {
        let targets = watchers.withLockedValue { watchers -> [(update: Tasker_V1_StepUpdate, to: [UpdateSubscription])] in
            guard !watchers.isEmpty else { return [] }
            let everyTask = Array(watchers.everyTask.values)
            return updates.map { update in (update, everyTask + (watchers.byTask[update.taskID].map { Array($0.values) } ?? [])) }
        }
        var overflowed: [ObjectIdentifier: UpdateSubscription] = [:]
        for (update, subscriptions) in targets {
            for subscription in subscriptions where overflowed[ObjectIdentifier(subscription)] == nil && !subscription.offer(update) {
                overflowed[ObjectIdentifier(subscription)] = subscription
            }
        }
        for subscription in overflowed.values { subscription.end(.fellBehind) }
    }
}

/// Carries a node's own updates to the other nodes' hubs.
public protocol UpdateForwarder: Sendable {
    /// Whether any other node has watchers now: updates are made and sent only then.
    var othersWatching: Bool { get }
    func forward(_ updates: [Tasker_V1_StepUpdate])
    /// A watcher subscribed on this node: other nodes should start sending.
    func watcherSubscribed()
}

/// One watcher's updates as they arrive, until it stops watching or is cut off for falling
/// behind.
public final class UpdateSubscription: Sendable {
    let id: Int
    public let taskID: String?
    public let updates: AsyncStream<Tasker_V1_StepUpdate>
    private let continuation: AsyncStream<Tasker_V1_StepUpdate>.Continuation
    private let ending = NIOLockedValueBox<Ending?>(nil)
    /// Set while a tick waits in the buffer, so that ticks take at most one of its places.
    private let tickWaiting = NIOLockedValueBox(false)

    public enum Ending: Sendable, Equatable {
        /// More updates than the hub's buffer were waiting for the watcher.
        case fellBehind
        case serverStopping
    }

    init(id: Int, taskID: String?, updates: AsyncStream<Tasker_V1_StepUpdate>, continuation: AsyncStream<Tasker_V1_StepUpdate>.Continuation) {
        self.id = id
        self.taskID = taskID
        self.updates = updates
        self.continuation = continuation
    }

    /// Why the updates ended, when the hub ended them.
    public var ended: Ending? { ending.withLockedValue { $0 } }

    /// False when the buffer is full.
    func offer(_ update: Tasker_V1_StepUpdate) -> Bool {
        if case .dropped = continuation.yield(update) { return false }
        return true
    }

    /// Wakes the watcher with an update of sequence 0 (no real update has it), so it can
    /// look about after a quiet spell. A tick that is still waiting is not repeated.
    public func tick() {
        let first = tickWaiting.withLockedValue { waiting in
            defer { waiting = true }
            return !waiting
        }
        guard first else { return }
        if case .dropped = continuation.yield(Tasker_V1_StepUpdate()) {
            tickWaiting.withLockedValue { $0 = false }
        }
    }

    /// The watcher has taken the waiting tick.
    public func tickTaken() {
        tickWaiting.withLockedValue { $0 = false }
    }

    func end(_ reason: Ending) {
        ending.withLockedValue { $0 = $0 ?? reason }
        continuation.finish()
    }

    /// Stops watching.
    public func cancel() {
        continuation.finish()
    }
}
