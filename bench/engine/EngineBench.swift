import Foundation
import SwiftProtobuf
import TaskerDev
import TaskerEngine
import TaskerProto
import TaskerRPC
import TaskerServer
import TaskerStore

/// SubmitTask of a 4-step template and GetTask over RPC, against a private Postgres with
/// durable commits (fsync and synchronous_commit on, the defaults), at 1 and at 32 callers.
///
///   swift run -c release tasker-bench-engine [--requests N]
@main
struct EngineBench {
    static func main() async throws {
        let arguments = CommandLine.arguments
        let requests = arguments.firstIndex(of: "--requests").flatMap { Int(arguments[$0 + 1]) } ?? 4000

        let postgres = try PrivatePostgres(settings: ["synchronous_commit": "on", "fsync": "on", "max_connections": "100"])
        defer { postgres.stop() }
        let poolSize = arguments.firstIndex(of: "--connections").flatMap { Int(arguments[$0 + 1]) } ?? 16
        let pool = PostgresPool(url: postgres.url, size: poolSize)
        try await Migrator().migrate(pool)
        var configuration = RPCServer.Configuration(host: "127.0.0.1", port: 0)
        configuration.handlersRunOnEventLoop = !arguments.contains("--off-loop")
        let server = try await RPCServer.start(configuration: configuration, services: [TaskerService(engine: TaskEngine(pool: pool))])
        let client = RPCClient(host: "127.0.0.1", port: server.port)

        var template = Tasker_V1_TaskTemplate()
        template.name = "bench"
        template.version = "1"
        template.steps = [("a", []), ("b", ["a"]), ("c", ["a"]), ("d", ["b", "c"])].map { name, dependsOn in
            var step = Tasker_V1_StepTemplate()
            step.name = name
            step.handler = "noop"
            step.dependsOn = dependsOn
            return step
        }
        var register = Tasker_V1_RegisterTaskTemplateRequest()
        register.template = template
        _ = try await client.unary("/tasker.v1.Tasker/RegisterTaskTemplate", register, as: Tasker_V1_RegisterTaskTemplateResponse.self)

        var submit = Tasker_V1_SubmitTaskRequest()
        submit.name = "bench"
        submit.context = try Google_Protobuf_Struct(jsonString: #"{"cart_id": 7, "items": ["a", "b"]}"#)
        let submitRequest = submit

        @Sendable func submitOnce() async throws -> String {
            try await client.unary("/tasker.v1.Tasker/SubmitTask", submitRequest, as: Tasker_V1_SubmitTaskResponse.self).task.taskID
        }
        for _ in 0..<200 { _ = try await submitOnce() }
        if arguments.contains("--probe") {
            let engine = TaskEngine(pool: pool)
            let id = try await submitOnce()
            for label in ["select", "getTask", "health", "rpcGet"] {
                let begin = ContinuousClock.now
                for _ in 0..<200 {
                    if label == "select" {
                        _ = try await pool.withConnection { try $0.query("SELECT 1") }
                    } else if label == "health" {
                        _ = try await client.unary("/grpc.health.v1.Health/Check", Grpc_Health_V1_HealthCheckRequest(), as: Grpc_Health_V1_HealthCheckResponse.self)
                    } else if label == "rpcGet" {
                        var get = Tasker_V1_GetTaskRequest()
                        get.taskID = id
                        _ = try await client.unary("/tasker.v1.Tasker/GetTask", get, as: Tasker_V1_Task.self)
                    } else {
                        _ = try await engine.getTask(id)
                    }
                }
                print(label, (ContinuousClock.now - begin) / 200)
            }
        }

        print("durable commits: synchronous_commit=on, fsync=on; \(requests) requests per row; 4-step diamond template")
        print("| operation | callers | requests/s | p50 ms | p99 ms |")
        print("|---|---:|---:|---:|---:|")
        if arguments.contains("--probe") {
            let (rate, latencies, _) = try await measure(callers: 1, requests: requests) {
                _ = try await client.unary("/grpc.health.v1.Health/Check", Grpc_Health_V1_HealthCheckRequest(), as: Grpc_Health_V1_HealthCheckResponse.self)
                return ""
            }
            print(row("Health", 1, rate, latencies))
        }
        var ids: [String] = []
        for callers in [1, 32] {
            let (rate, latencies, made) = try await measure(callers: callers, requests: requests) { try await submitOnce() }
            ids += made
            print(row("SubmitTask", callers, rate, latencies))
        }
        let known = ids
        for callers in [1, 32] {
            let (rate, latencies, _) = try await measure(callers: callers, requests: requests) {
                var get = Tasker_V1_GetTaskRequest()
                get.taskID = known.randomElement()!
                return try await client.unary("/tasker.v1.Tasker/GetTask", get, as: Tasker_V1_Task.self).taskID
            }
            print(row("GetTask", callers, rate, latencies))
        }
        await client.close()
        await server.shutdownNow()
        await pool.shutdown()
    }

    static func row(_ name: String, _ callers: Int, _ rate: Double, _ latencies: [Double]) -> String {
        let sorted = latencies.sorted()
        let p50 = sorted[sorted.count / 2] * 1000
        let p99 = sorted[min(sorted.count - 1, sorted.count * 99 / 100)] * 1000
        return "| \(name) | \(callers) | \(Int(rate)) | \(String(format: "%.2f", p50)) | \(String(format: "%.2f", p99)) |"
    }

    /// Runs `requests` calls spread over `callers` concurrent loops.
    static func measure(
        callers: Int, requests: Int, _ call: @escaping @Sendable () async throws -> String
    ) async throws -> (Double, [Double], [String]) {
        let started = ContinuousClock.now
        let results = try await withThrowingTaskGroup(of: ([Double], [String]).self) { group in
            for caller in 0..<callers {
                let share = requests / callers + (caller < requests % callers ? 1 : 0)
                group.addTask {
                    var latencies: [Double] = []
                    var made: [String] = []
                    for _ in 0..<share {
                        let begin = ContinuousClock.now
                        made.append(try await call())
                        let elapsed = ContinuousClock.now - begin
                        latencies.append(Double(elapsed.components.attoseconds) / 1e18 + Double(elapsed.components.seconds))
                    }
                    return (latencies, made)
                }
            }
            return try await group.reduce(into: ([Double](), [String]())) { $0.0 += $1.0; $0.1 += $1.1 }
        }
        let elapsed = ContinuousClock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return (Double(requests) / seconds, results.0, results.1)
    }
}
