// Workers end to end: `tasker serve` (a release build, its own process) on a private Postgres
// with durable commits and a private Redis; no-op handlers in Swift SDK workers over loopback.
//
//   swift build -c release --product tasker && swift build -c release --product tasker-bench-workers
//   .build/release/tasker-bench-workers [--tasks 10000] [--latency-tasks 200] [--watchers 0]
//       [--port P] [--http-port P] [--start-when FILE] [--limited-keys 0] [--max-running 8] [--rate-limit 0]
//
// (a) a linear task of 4 steps, one at a time: submit → COMPLETE seen by GetTask (polled
//     every millisecond), p50 and p99;
// (b) 10,000 diamond tasks (4 steps) submitted by 32 callers while 4 workers × 32 slots run
//     them: steps per second from the first submit until every task is COMPLETE; with
//     --watchers N, N StreamStepUpdates calls follow every task meanwhile, each on its own
//     connection, and the updates each received are counted.
// --limited-keys N: (b) again in the same run, each step of the diamonds with a concurrency
//     limit whose key is one of N (from the task's context), --max-running at once each;
//     with --rate-limit R, each step also spends one of a rate limit of R a second shared by all.
// --start-when FILE: once the server serves, wait until FILE exists before (a), so that a
// driver (bench/dashboard.py) can open dashboard pages on the server's HTTP port first.
#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import Foundation
import NIOConcurrencyHelpers
import SwiftProtobuf
import TaskerDev
import TaskerProto
import TaskerQueue
import TaskerRPC
import TaskerWorker

func option(_ name: String, _ fallback: Int) -> Int {
    let arguments = CommandLine.arguments
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count, let value = Int(arguments[index + 1]) else { return fallback }
    return value
}

func template(_ name: String, _ dependencies: [(String, [String])], limit: Tasker_V1_ConcurrencyLimit? = nil, rate: Tasker_V1_RateLimit? = nil) -> Tasker_V1_TaskTemplate {
    var template = Tasker_V1_TaskTemplate()
    template.name = name
    template.version = "1"
    template.steps = dependencies.map { name, dependsOn in
        var step = Tasker_V1_StepTemplate()
        step.name = name
        step.handler = "noop"
        step.dependsOn = dependsOn
        if let limit { step.concurrency = limit }
        if let rate { step.rateLimits = [rate] }
        return step
    }
    return template
}

func percentile(_ sorted: [Double], _ p: Double) -> Double {
    sorted[min(Int(Double(sorted.count) * p), sorted.count - 1)]
}

// Each line as it is printed: a driver reads the result before the benchmark stops its server.
setvbuf(stdout, nil, _IOLBF, 0)
let taskCount = option("--tasks", 10000)
let latencyTasks = option("--latency-tasks", 200)
let watcherCount = option("--watchers", 0)
let limitedKeys = option("--limited-keys", 0)
let maxRunning = option("--max-running", 8)
let rateLimit = option("--rate-limit", 0)
let executable = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("tasker").path

let postgres = try PrivatePostgres()
let redis = try PrivateRedis()
let port = option("--port", LocalPort.free())
let server = try ChildProcess(executable: executable, arguments: [
    "serve", "--port", String(port), "--http-port", String(option("--http-port", LocalPort.free())), "--database-url", postgres.url, "--redis-url", redis.url,
    "--database-connections", "16",
])
defer {
    server.stop(signal: SIGTERM, grace: 20)
    redis.close()
    postgres.stop()
}
while !LocalPort.accepts(port) { usleep(20_000) }
if let index = CommandLine.arguments.firstIndex(of: "--start-when"), index + 1 < CommandLine.arguments.count {
    let file = CommandLine.arguments[index + 1]
    print("serving on \(port); starting once \(file) exists")
    while !FileManager.default.fileExists(atPath: file) { usleep(50_000) }
}

let client = RPCClient(host: "127.0.0.1", port: port)
let diamond = [("a", [String]()), ("b", ["a"]), ("c", ["a"]), ("d", ["b", "c"])]
let completed = NIOLockedValueBox(0)
var workers: [(Worker, Task<Void, any Error>)] = []
for index in 0..<4 {
    let worker = Worker(host: "127.0.0.1", port: port, configuration: .init(
        name: "bench-\(index)", slots: 32,
        templates: index == 0 ? [template("linear", [("a", []), ("b", ["a"]), ("c", ["b"]), ("d", ["c"])]),
                                 template("diamond", diamond),
                                 template("diamond-limited", diamond, limit: .with { $0.key = "k:{$.k}"; $0.maxRunning = Int32(maxRunning) },
                                          rate: rateLimit > 0 ? .with { $0.key = "api"; $0.limit = Int32(rateLimit); $0.periodSeconds = 1 } : nil)] : []))
    worker.handle("noop") { step in
        if step.stepName == "d" { completed.withLockedValue { $0 += 1 } }
        return StepOutput()
    }
    workers.append((worker, Task { try await worker.run() }))
}
while !workers.allSatisfy({ $0.0.isConnected }) { try await Task.sleep(for: .milliseconds(20)) }
let templates: Tasker_V1_ListTaskTemplatesResponse = try await client.unary("/tasker.v1.Tasker/ListTaskTemplates", Tasker_V1_ListTaskTemplatesRequest())
precondition(Set(templates.templates.map(\.name)).isSuperset(of: ["linear", "diamond"]), "the templates were not registered")

func submit(_ name: String, on client: RPCClient, context: Google_Protobuf_Struct = .init()) async throws -> String {
    let response: Tasker_V1_SubmitTaskResponse = try await client.unary(
        "/tasker.v1.Tasker/SubmitTask", Tasker_V1_SubmitTaskRequest.with { $0.name = name; $0.context = context })
    return response.task.taskID
}

// (a) one linear task at a time.
var latencies: [Double] = []
for round in 0..<(latencyTasks + 10) {
    let started = DispatchTime.now().uptimeNanoseconds
    let id = try await submit("linear", on: client)
    while true {
        let task: Tasker_V1_Task = try await client.unary("/tasker.v1.Tasker/GetTask", Tasker_V1_GetTaskRequest.with { $0.taskID = id })
        if task.status == .complete { break }
        precondition(task.status != .error, "task \(id) failed")
        try await Task.sleep(for: .milliseconds(1))
    }
    // The first ten warm up connections and caches.
    if round >= 10 { latencies.append(Double(DispatchTime.now().uptimeNanoseconds - started) / 1_000_000) }
}
latencies.sort()

// (b) many diamonds at once, with watchers of every task if asked.
let received = NIOLockedValueBox([Int](repeating: 0, count: watcherCount))
var watchers: [(RPCClient, ClientCall<Tasker_V1_StreamStepUpdatesRequest, Tasker_V1_StepUpdate>, Task<Void, Never>)] = []
for index in 0..<watcherCount {
    let watcherClient = RPCClient(host: "127.0.0.1", port: port)
    let call = try await watcherClient.serverStreaming(
        "/tasker.v1.Tasker/StreamStepUpdates", Tasker_V1_StreamStepUpdatesRequest(), as: Tasker_V1_StepUpdate.self)
    watchers.append((watcherClient, call, Task {
        do {
            for try await _ in call.responses { received.withLockedValue { $0[index] += 1 } }
        } catch {}
    }))
}
/// (b): `taskCount` tasks of `name` from 32 callers, the i-th with `context(i)`; how long
/// submitting them took, and how long until every one was COMPLETE.
func runDiamonds(_ name: String, context: @escaping @Sendable (Int) -> Google_Protobuf_Struct) async throws -> (submitted: Double, elapsed: Double) {
    completed.withLockedValue { $0 = 0 }
    let started = DispatchTime.now().uptimeNanoseconds
    let next = NIOLockedValueBox(0)
    try await withThrowingTaskGroup(of: Void.self) { group in
        for _ in 0..<32 {
            group.addTask {
                while true {
                    let index = next.withLockedValue { counter -> Int in counter += 1; return counter }
                    guard index <= taskCount else { return }
                    _ = try await submit(name, on: client, context: context(index))
                }
            }
        }
        try await group.waitForAll()
    }
    let submitted = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
    while completed.withLockedValue({ $0 }) < taskCount { try await Task.sleep(for: .milliseconds(5)) }
    // The last results are recorded just after their handlers return: wait for no task of
    // the template left open (a driver's own tasks may run on).
    while true {
        let open: Tasker_V1_ListTasksResponse = try await client.unary(
            "/tasker.v1.Tasker/ListTasks", Tasker_V1_ListTasksRequest.with { $0.name = name; $0.status = .inProgress; $0.pageSize = 1 })
        let pending: Tasker_V1_ListTasksResponse = try await client.unary(
            "/tasker.v1.Tasker/ListTasks", Tasker_V1_ListTasksRequest.with { $0.name = name; $0.status = .pending; $0.pageSize = 1 })
        if open.tasks.isEmpty && pending.tasks.isEmpty { break }
        try await Task.sleep(for: .milliseconds(5))
    }
    return (submitted, Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9)
}

/// How many steps the handler's stream has been given so far: those that went through the
/// queue rather than starting in their dependency's result transaction.
let lane = RedisLane(url: try RedisURL(parsing: redis.url))
func queuedSoFar() async throws -> Int {
    let fields = try await lane.command(["XINFO", "STREAM", StepQueue.streamKey("noop")]).array
    return stride(from: 0, to: fields.count - 1, by: 2).first { fields[$0].string == "entries-added" }.flatMap { fields[$0 + 1].integer } ?? 0
}

let queuedBefore = try await queuedSoFar()
let (submitted, elapsed) = try await runDiamonds("diamond") { _ in Google_Protobuf_Struct() }
let queuedUnlimited = try await queuedSoFar() - queuedBefore
let limited = limitedKeys > 0
    ? try await runDiamonds("diamond-limited") { index in Google_Protobuf_Struct(fields: ["k": Google_Protobuf_Value(numberValue: Double(index % limitedKeys))]) }
    : nil
let queuedLimited = try await queuedSoFar() - queuedBefore - queuedUnlimited
await lane.shutdown()

if watcherCount > 0 {
    try await Task.sleep(for: .seconds(1))
    // A stream of every task never ends by itself: the client ends it.
    for (watcherClient, call, reading) in watchers {
        call.cancel()
        await reading.value
        await watcherClient.close()
    }
}

print("| measurement | value |")
print("|---|---:|")
print(String(format: "| (a) linear 4-step task, submit → COMPLETE, p50 (%d tasks) | %.2f ms |", latencies.count, percentile(latencies, 0.5)))
print(String(format: "| (a) p99 | %.2f ms |", percentile(latencies, 0.99)))
print(String(format: "| (b) %d diamond tasks: all submitted after | %.1f s |", taskCount, submitted))
print(String(format: "| (b) all COMPLETE after | %.1f s |", elapsed))
print(String(format: "| (b) steps/s | %.0f |", Double(taskCount * 4) / elapsed))
print("| (b) steps that went through the queue | \(queuedUnlimited) |")
if let limited {
    let rated = rateLimit > 0 ? String(format: " and to %d a second in all", rateLimit) : ""
    print("| (c) the same, each step limited to \(maxRunning) at once per key of \(limitedKeys)\(rated): all COMPLETE after | "
        + String(format: "%.1f s |", limited.elapsed))
    print(String(format: "| (c) steps/s | %.0f |", Double(taskCount * 4) / limited.elapsed))
    print(String(format: "| (c) steps/s against (b) | %.3f |", elapsed / limited.elapsed))
    print("| (c) steps that went through the queue | \(queuedLimited) |")
}
if watcherCount > 0 {
    let counts = received.withLockedValue { $0 }
    print("| (b) watchers of every task | \(watcherCount) |")
    print("| (b) updates received by each watcher, fewest and most | \(counts.min()!), \(counts.max()!) |")
}

for (worker, running) in workers {
    await worker.stop()
    _ = await running.result
}
await client.close()
