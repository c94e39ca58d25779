import Foundation
import SwiftProtobuf
import TaskerProto
import TaskerStore

/// A connected worker as its node reports it in `tasker_nodes.workers`, with the node's
/// liveness: every node writes its own once per node heartbeat, never once per worker's.
public struct WorkerReport: Codable, Sendable, Equatable {
    public var workerID: String
    public var name: String
    public var handlers: [String]
    public var slots: Int
    public var inFlight: Int
    public var draining: Bool
    /// Unix seconds.
    public var connectedAt: Double
    public var lastHeartbeatAt: Double

    public init(
        workerID: String, name: String, handlers: [String], slots: Int, inFlight: Int, draining: Bool, connectedAt: Double,
        lastHeartbeatAt: Double
    ) {
        self.workerID = workerID
        self.name = name
        self.handlers = handlers
        self.slots = slots
        self.inFlight = inFlight
        self.draining = draining
        self.connectedAt = connectedAt
        self.lastHeartbeatAt = lastHeartbeatAt
    }

    enum CodingKeys: String, CodingKey {
        case workerID = "worker_id", name, handlers, slots, inFlight = "in_flight", draining
        case connectedAt = "connected_at", lastHeartbeatAt = "last_heartbeat_at"
    }

    /// Slots it can take steps in now.
    var freeSlots: Int { draining ? 0 : max(slots - inFlight, 0) }
}

/// What the whole cluster is doing, read the same from any node: the workers every live node
/// reported, and the steps by handler.
extension TaskEngine {
    /// Records that `node` is alive, with its connected workers (and when it started, the first time).
    public func heartbeat(node: String, name: String, workers: [WorkerReport] = []) async throws(EngineError) {
        let encoded: String
        do {
            encoded = String(decoding: try JSONEncoder().encode(workers), as: UTF8.self)
        } catch {
            throw .internal("the workers of this node cannot be written down: \(error)")
        }
        _ = try await read { connection in
            try connection.query(
                """
                INSERT INTO tasker_nodes (node_id, name, workers) VALUES ($1::uuid, $2, $3::jsonb)
                ON CONFLICT (node_id) DO UPDATE SET seen_at = now(), workers = excluded.workers
                """, [node, name, encoded])
        }
    }

    /// Every worker of the nodes seen in the last `liveWithin` seconds; with a handler, those
    /// that run it. By node name, then worker name.
    public func listWorkers(handler: String = "", liveWithin: Double) async throws(EngineError) -> [Tasker_V1_Worker] {
        try InputCheck.text(handler, "handler", limit: InputLimits.nameBytes)
        let nodes = try await liveNodes(within: liveWithin)
        var workers: [Tasker_V1_Worker] = []
        for node in nodes.sorted(by: { ($0.name, $0.nodeID) < ($1.name, $1.nodeID) }) {
            for report in node.workers.sorted(by: { ($0.name, $0.workerID) < ($1.name, $1.workerID) })
            where handler.isEmpty || report.handlers.contains(handler) {
                workers.append(.with {
                    $0.workerID = report.workerID
                    $0.name = report.name
                    $0.node = node.name
                    $0.nodeID = node.nodeID
                    $0.handlers = report.handlers
                    $0.slots = Int32(clamping: report.slots)
                    $0.inFlight = Int32(clamping: report.inFlight)
                    $0.draining = report.draining
                    $0.connectedAt = Google_Protobuf_Timestamp(roundingTimeIntervalSince1970: report.connectedAt, rule: .toNearestOrAwayFromZero)
                    $0.lastHeartbeatAt = Google_Protobuf_Timestamp(roundingTimeIntervalSince1970: report.lastHeartbeatAt, rule: .toNearestOrAwayFromZero)
                })
            }
        }
        return workers
    }

    /// Each handler with steps ready, running or waiting to retry, or with workers, by name.
    public func listQueues(liveWithin: Double) async throws(EngineError) -> [Tasker_V1_HandlerQueue] {
        // One count per partial index (ENQUEUED, IN_PROGRESS, WAITING_FOR_RETRY): never a scan of finished steps.
        let counts = try await read { connection in
            try connection.query(
                """
                SELECT handler, \(StepStatus.enqueued.rawValue) AS status, count(*) AS count FROM steps
                    WHERE status = \(StepStatus.enqueued.rawValue) GROUP BY handler
                UNION ALL SELECT handler, \(StepStatus.inProgress.rawValue), count(*) FROM steps
                    WHERE status = \(StepStatus.inProgress.rawValue) GROUP BY handler
                UNION ALL SELECT handler, \(StepStatus.waitingForRetry.rawValue), count(*) FROM steps
                    WHERE status = \(StepStatus.waitingForRetry.rawValue) GROUP BY handler
                """)
        }
        var queues: [String: Tasker_V1_HandlerQueue] = [:]
        for row in counts {
            guard let handler = row["handler"], let count = row.int("count") else { continue }
            var queue = queues[handler] ?? .with { $0.handler = handler }
            switch row.int("status") {
            case Int(StepStatus.enqueued.rawValue): queue.ready = Int64(count)
            case Int(StepStatus.inProgress.rawValue): queue.inProgress = Int64(count)
            default: queue.waitingForRetry = Int64(count)
            }
            queues[handler] = queue
        }
        for (handler, capacity) in Self.capacity(of: try await liveNodes(within: liveWithin)) {
            var queue = queues[handler] ?? .with { $0.handler = handler }
            queue.workers = Int32(clamping: capacity.workers)
            queue.freeSlots = Int32(clamping: capacity.free)
            queues[handler] = queue
        }
        return queues.values.sorted { $0.handler < $1.handler }
    }

    /// Sets `waiting_reason` on each step that cannot move now.
    func explainWaits(_ task: inout Tasker_V1_Task, liveWithin: Double) async throws(EngineError) {
        let queued = Set(task.steps.filter { $0.status == .enqueued }.map(\.handler))
        let capacity = queued.isEmpty ? [:] : Self.capacity(of: try await recentLiveNodes(within: liveWithin))
        let done = Set(task.steps.filter { [.complete, .skipped, .resolvedManually].contains($0.status) }.map(\.name))
        let limited = task.steps.contains { $0.status == .enqueued && !$0.concurrencyKey.isEmpty }
            ? try await concurrencyInUse(taskID: task.taskID) : [:]
        let rated = task.steps.filter { $0.status == .enqueued && !$0.rateLimitKeys.isEmpty }.map(\.stepID)
        let rateWaits = rated.isEmpty ? [:] : await rateWaits.withLockedValue({ $0 })?.rateWaits(rated) ?? [:]
        for index in task.steps.indices {
            let step = task.steps[index]
            switch step.status {
            case .enqueued:
                let serving = capacity[step.handler]
                if let use = limited[step.name], use.running >= use.max {
                    task.steps[index].waitingReason = "\(use.running) of concurrency key \(InputCheck.quoted(step.concurrencyKey)) are running (its limit)"
                } else if let wait = rateWaits[step.stepID] {
                    task.steps[index].waitingReason = "rate limit \(InputCheck.quoted(wait.key)) is spent until \(Self.instant(wait.at))"
                } else if serving == nil || serving!.workers == 0 {
                    task.steps[index].waitingReason = "no connected worker runs handler '\(step.handler)'"
                } else if serving!.free == 0 {
                    task.steps[index].waitingReason = "every worker of handler '\(step.handler)' is busy (\(serving!.slots) slots)"
                }
            case .waitingForRetry where step.hasNextAttemptAt:
                task.steps[index].waitingReason = "next attempt at \(ISO8601DateFormatter().string(from: step.nextAttemptAt.date))"
            case .pending where task.status == .pending || task.status == .inProgress:
                let waitingFor = step.dependsOn.filter { !done.contains($0) }
                if !task.admitted, waitingFor.isEmpty {
                    task.steps[index].waitingReason = "the task waits for a place of its concurrency key \(InputCheck.quoted(task.concurrencyKey))"
                } else if !waitingFor.isEmpty {
                    task.steps[index].waitingReason = "waits for \(waitingFor.joined(separator: ", "))"
                } else if step.hasNextAttemptAt, step.nextAttemptAt.date > Date() {
                    task.steps[index].waitingReason = "the task starts at \(ISO8601DateFormatter().string(from: step.nextAttemptAt.date))"
                }
            default:
                break
            }
        }
    }


    /// An instant as ISO 8601 to the millisecond.
    private static func instant(_ seconds: Double) -> String {
        let format = ISO8601DateFormatter()
        format.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return format.string(from: Date(timeIntervalSince1970: seconds))
    }

    /// For each ENQUEUED step of the task with a concurrency limit: that limit, and how many
    /// attempts of its key run now.
    private func concurrencyInUse(taskID: String) async throws(EngineError) -> [String: (running: Int, max: Int)] {
        try await read { connection in
            var use: [String: (running: Int, max: Int)] = [:]
            for row in try connection.query(
                """
                SELECT s.name, s.concurrency_max,
                    (SELECT count(*) FROM steps r WHERE r.status = \(StepStatus.inProgress.rawValue) AND r.concurrency_key = s.concurrency_key) AS running
                FROM steps s
                WHERE s.task_id = $1 AND s.status = \(StepStatus.enqueued.rawValue) AND s.concurrency_key IS NOT NULL
                """, [taskID])
            {
                if let name = row["name"] { use[name] = (row.int("running") ?? 0, row.int("concurrency_max") ?? 0) }
            }
            return use
        }
    }

    /// The live nodes as read at most `ClusterSnapshot.maxAge` ago: nodes report every 2 s, so
    /// a GetTask explaining its waits costs no query of its own most of the time.
    private func recentLiveNodes(within seconds: Double) async throws(EngineError) -> [LiveNode] {
        let now = ContinuousClock.now
        if let known = cluster.withLockedValue({ $0 }), known.within == seconds, now - known.at < ClusterSnapshot.maxAge {
            return known.nodes
        }
        let nodes = try await liveNodes(within: seconds)
        cluster.withLockedValue { $0 = ClusterSnapshot(at: now, within: seconds, nodes: nodes) }
        return nodes
    }

    private func liveNodes(within seconds: Double) async throws(EngineError) -> [LiveNode] {
        let rows = try await read { connection in
            try connection.query(
                """
                SELECT node_id::text AS node_id, name, workers::text AS workers FROM tasker_nodes
                WHERE seen_at > now() - make_interval(secs => $1::float8)
                """, [String(seconds)])
        }
        return rows.compactMap { row in
            guard let id = row["node_id"] else { return nil }
            let workers = (try? JSONDecoder().decode([WorkerReport].self, from: Data((row["workers"] ?? "[]").utf8))) ?? []
            return LiveNode(nodeID: id, name: row["name"] ?? "", workers: workers)
        }
    }

    /// By handler: the workers that run it (draining ones left out), their slots, and how many are free.
    private static func capacity(of nodes: [LiveNode]) -> [String: (workers: Int, slots: Int, free: Int)] {
        var capacity: [String: (workers: Int, slots: Int, free: Int)] = [:]
        for worker in nodes.flatMap(\.workers) where !worker.draining {
            for handler in worker.handlers {
                let known = capacity[handler] ?? (0, 0, 0)
                capacity[handler] = (known.workers + 1, known.slots + worker.slots, known.free + worker.freeSlots)
            }
        }
        return capacity
    }
}

struct LiveNode: Sendable {
    let nodeID: String
    let name: String
    let workers: [WorkerReport]
}

/// The live nodes and their workers as last read, shared by the reads that explain waits.
struct ClusterSnapshot: Sendable {
    static let maxAge: Duration = .seconds(1)
    let at: ContinuousClock.Instant
    let within: Double
    let nodes: [LiveNode]
}

/// What the queue, which the engine does not know, says of steps parked for a rate limit: the
/// key each waits for and when it has room (Unix seconds).
public protocol RateWaitSource: Sendable {
    func rateWaits(_ stepIDs: [String]) async -> [String: (key: String, at: Double)]
}
