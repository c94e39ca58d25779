import Foundation
import NIOConcurrencyHelpers
import NIOPosix
import SwiftProtobuf
import TaskerDev
import TaskerDispatch
import TaskerEngine
import TaskerProto
import TaskerQueue
import TaskerRPC
import TaskerServer
import TaskerStore
import TaskerWorker
import Testing

/// Nodes on one Postgres database and one Redis of the test's own, with dispatch timings
/// short enough for tests, a client, and the workers a test starts.
final class DispatchHarness: Sendable {
    let redis: PrivateRedis
    let databaseURL: String
    let nodes: [TaskerNode]
    let client: RPCClient
    private let workers = NIOLockedValueBox<[(Worker, Task<Void, any Error>)]>([])

    static var fast: DispatchConfiguration {
        var configuration = DispatchConfiguration()
        configuration.heartbeatInterval = 0.5
        configuration.sweepInterval = 0.3
        configuration.nodeHeartbeatInterval = 0.3
        configuration.nodeTimeout = 2
        configuration.queueGrace = 0.5
        configuration.retryPollInterval = 0.05
        configuration.abandonedDeliveryAge = 2
        return configuration
    }

    /// `fast`, but a worker may be silent for 3 s and a node for 10 before it counts as lost:
    /// for tests whose workers send no heartbeats, or that must not lose one to a loaded
    /// machine (a lost worker's steps run again, which they would count).
    static var patient: DispatchConfiguration {
        var configuration = fast
        configuration.heartbeatInterval = 1
        configuration.nodeTimeout = 10
        return configuration
    }

    init(
        nodes count: Int = 1, dispatch: DispatchConfiguration = DispatchHarness.fast,
        configure: (inout TaskerNode.Settings) -> Void = { _ in }
    ) async throws {
        redis = try await blocking { try PrivateRedis() }
        databaseURL = try await blocking { try PrivatePostgres.shared().createDatabase() }
        var nodes: [TaskerNode] = []
        for index in 0..<count {
            var settings = TaskerNode.Settings(databaseURL: databaseURL, redisURL: redis.url)
            settings.port = 0
            settings.databaseConnections = 6
            settings.name = "node-\(index)"
            settings.dispatch = dispatch
            configure(&settings)
            nodes.append(try await TaskerNode.start(settings))
        }
        self.nodes = nodes
        client = RPCClient(host: "127.0.0.1", port: nodes[0].server.port)
    }

    func stop() async {
        for (worker, running) in workers.withLockedValue({ $0 }) {
            await worker.stop()
            _ = await running.result
        }
        await client.close()
        for node in nodes { await node.shutdown() }
        _ = try? await blocking { [redis] in redis.stop() }
    }

    /// Starts a worker on node `node` with `configure` adding its handlers.
    @discardableResult
    func worker(
        on node: Int = 0, name: String = "worker", slots: Int = 4, templates: [Tasker_V1_TaskTemplate] = [],
        _ configure: (Worker) -> Void
    ) async throws -> Worker {
        let worker = Worker(
            host: "127.0.0.1", port: nodes[node].server.port,
            configuration: .init(name: name, slots: slots, templates: templates, reconnectBackoff: (0.05, 0.5), drainTimeout: 5))
        configure(worker)
        let running = Task { try await worker.run() }
        workers.withLockedValue { $0.append((worker, running)) }
        try await eventually("worker \(name) registered") { worker.isConnected }
        return worker
    }

    func register(_ template: Tasker_V1_TaskTemplate) async throws {
        var request = Tasker_V1_RegisterTaskTemplateRequest()
        request.template = template
        let _: Tasker_V1_RegisterTaskTemplateResponse = try await client.unary("/tasker.v1.Tasker/RegisterTaskTemplate", request)
    }

    func submit(_ name: String, on node: Int = 0, context: String = "{}") async throws -> Tasker_V1_Task {
        var request = Tasker_V1_SubmitTaskRequest()
        request.name = name
        request.context = try Google_Protobuf_Struct(jsonString: context)
        let target = node == 0 ? client : RPCClient(host: "127.0.0.1", port: nodes[node].server.port)
        defer { if node != 0 { Task { await target.close() } } }
        let response: Tasker_V1_SubmitTaskResponse = try await target.unary("/tasker.v1.Tasker/SubmitTask", request)
        return response.task
    }

    func task(_ id: String) async throws -> Tasker_V1_Task {
        try await client.unary("/tasker.v1.Tasker/GetTask", Tasker_V1_GetTaskRequest.with { $0.taskID = id })
    }

    /// Waits until the task has finished; returns it.
    func finished(_ id: String, within seconds: Double = 30) async throws -> Tasker_V1_Task {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let task = try await task(id)
            if [.complete, .error, .cancelled].contains(task.status) { return task }
            try await Task.sleep(for: .milliseconds(50))
        }
        let task = try await task(id)
        Issue.record("task \(id) still \(task.status) after \(seconds) s: \(task.steps.map { "\($0.name)=\($0.status)" })")
        return task
    }

    /// How many entries each handler's stream was ever given: which steps went through the queue.
    func entriesAdded(_ handlers: [String]) async throws -> [String: Int] {
        let lane = RedisLane(url: try RedisURL(parsing: redis.url))
        var added: [String: Int] = [:]
        for handler in handlers {
            let info = try? await lane.command(["XINFO", "STREAM", StepQueue.streamKey(handler)])
            let fields = info?.array ?? []
            added[handler] = stride(from: 0, to: fields.count - 1, by: 2).first { fields[$0].string == "entries-added" }
                .flatMap { fields[$0 + 1].integer } ?? 0
        }
        await lane.shutdown()
        return added
    }

    /// The stored history of a task: (step name, status, attempt, occurred at).
    func history(_ taskID: String) async throws -> [(step: String, status: StepStatus, attempt: Int, at: Double)] {
        let pool = PostgresPool(url: databaseURL, size: 1)
        defer { Task { await pool.shutdown() } }
        return try await pool.withConnection { connection in
            try connection.query(
                """
                SELECT step_name, status, attempt, extract(epoch FROM occurred_at)::text AS at FROM step_transitions
                WHERE task_id = $1 AND step_id IS NOT NULL ORDER BY sequence
                """, [taskID]
            ).map { ($0["step_name"]!, StepStatus(rawValue: $0.int("status")!)!, $0.int("attempt")!, $0.double("at")!) }
        }
    }
}

func template(_ name: String, _ steps: [Tasker_V1_StepTemplate]) -> Tasker_V1_TaskTemplate {
    var template = Tasker_V1_TaskTemplate()
    template.name = name
    template.version = "1"
    template.steps = steps
    return template
}

func step(
    _ name: String, dependsOn: [String] = [], retryLimit: Int32 = 3, backoff: Double = 0.2, timeout: Int32 = 0
) -> Tasker_V1_StepTemplate {
    var step = Tasker_V1_StepTemplate()
    step.name = name
    step.handler = name
    step.dependsOn = dependsOn
    step.retryLimit = retryLimit
    step.backoff.baseSeconds = backoff
    step.backoff.maxSeconds = 30
    step.backoff.jitter = 0.01
    step.timeoutSeconds = timeout
    return step
}

func results(_ json: String) -> StepOutput {
    StepOutput(results: try! Google_Protobuf_Struct(jsonString: json))
}

/// Polls `condition` until it holds, for up to `seconds`.
func eventually(_ what: String, within seconds: Double = 15, _ condition: () async throws -> Bool) async throws {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    Issue.record("\(what): not within \(seconds) s")
}

/// Runs blocking set-up (starting or stopping a server, initdb, redis-cli) on a pool of its
/// own, not on one of the few threads every test's async code shares. NIO's shared pool has a
/// thread per core: two tests' initdb would hold every other test's set-up behind them.
func blocking<Result: Sendable>(_ body: @escaping @Sendable () throws -> Result) async throws -> Result {
    try await blockingPool.runIfActive(body)
}

private let blockingPool: NIOThreadPool = {
    let pool = NIOThreadPool(numberOfThreads: 16)
    pool.start()
    return pool
}()

extension PrivateRedis {
    /// How many clients wait in a blocking XREADGROUP now (`CLIENT LIST`).
    func blockedStreamReads() throws -> Int {
        let list = Process()
        list.executableURL = URL(fileURLWithPath: "/usr/bin/redis-cli")
        list.arguments = ["-p", String(port), "CLIENT", "LIST"]
        let output = Pipe()
        list.standardOutput = output
        try list.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        list.waitUntilExit()
        return text.split(separator: "\n").filter { $0.contains("cmd=xreadgroup") && $0.contains("flags=b") }.count
    }
}
