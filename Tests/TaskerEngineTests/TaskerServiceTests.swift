import Foundation
import SwiftProtobuf
import TaskerDev
import TaskerProto
import TaskerRPC
import TaskerServer
import TaskerStore
import Testing

@testable import TaskerEngine

/// A Tasker server on its own database, and a client of it.
struct TaskerHarness {
    let pool: PostgresPool
    let engine: TaskEngine
    let server: RPCServer
    let client: RPCClient

    static func start() async throws -> TaskerHarness {
        let pool = PostgresPool(url: try PrivatePostgres.shared().createDatabase(), size: 4)
        try await Migrator().migrate(pool)
        let engine = TaskEngine(pool: pool)
        let server = try await RPCServer.start(
            configuration: .init(host: "127.0.0.1", port: 0), services: [TaskerService(engine: engine)])
        return TaskerHarness(pool: pool, engine: engine, server: server, client: RPCClient(host: "127.0.0.1", port: server.port))
    }

    func stop() async {
        await client.close()
        await server.shutdownNow()
        await pool.shutdown()
    }

    func call<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ method: String, _ request: Request, as: Response.Type = Response.self
    ) async throws -> Response {
        try await client.unary("/tasker.v1.Tasker/" + method, request, as: Response.self)
    }

    func register(_ template: Tasker_V1_TaskTemplate) async throws -> Tasker_V1_RegisterTaskTemplateResponse {
        var request = Tasker_V1_RegisterTaskTemplateRequest()
        request.template = template
        return try await call("RegisterTaskTemplate", request)
    }

    func submit(_ configure: (inout Tasker_V1_SubmitTaskRequest) -> Void) async throws -> Tasker_V1_SubmitTaskResponse {
        var request = Tasker_V1_SubmitTaskRequest()
        request.name = "order"
        configure(&request)
        return try await call("SubmitTask", request)
    }

    /// The stored history of a task, in sequence order.
    func history(_ taskID: String) async throws -> [(sequence: Int, step: String, status: Int, previous: Int)] {
        try await pool.withConnection { connection in
            try connection.query(
                "SELECT sequence, step_name, status, previous_status FROM step_transitions WHERE task_id = $1 ORDER BY sequence",
                [taskID]
            ).map { ($0.int("sequence")!, $0["step_name"]!, $0.int("status")!, $0.int("previous_status")!) }
        }
    }
}

func expectStatus(_ code: StatusCode, containing text: String? = nil, _ body: () async throws -> Void,
                  sourceLocation: SourceLocation = #_sourceLocation) async {
    do {
        try await body()
        Issue.record("expected \(code), but the call succeeded", sourceLocation: sourceLocation)
    } catch let error as RPCError {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        if let text { #expect(error.message.contains(text), "\(error.message)", sourceLocation: sourceLocation) }
    } catch {
        Issue.record("expected \(code), got \(error)", sourceLocation: sourceLocation)
    }
}

let diamond = [step("a"), step("b", dependsOn: ["a"]), step("c", dependsOn: ["a"]), step("d", dependsOn: ["b", "c"])]

@Suite(.timeLimit(.minutes(2))) struct TaskerServiceTests {
    @Test func registerTemplatesIdempotentlyAndRefuseConflicts() async throws {
        let harness = try await TaskerHarness.start()
        let first = try await harness.register(template(diamond))
        #expect(first.created)
        #expect(first.template.steps.allSatisfy { $0.retryLimit == 3 && $0.retryable })
        let again = try await harness.register(template(diamond))
        #expect(!again.created)
        await expectStatus(.alreadyExists, containing: "version 1.0.0") {
            _ = try await harness.register(template(Array(diamond.prefix(2))))
        }
        await expectStatus(.invalidArgument, containing: "cycle") {
            var looped = template([step("x", dependsOn: ["y"]), step("y", dependsOn: ["x"])])
            looped.name = "looped"
            _ = try await harness.register(looped)
        }
        let listed: Tasker_V1_ListTaskTemplatesResponse = try await harness.call("ListTaskTemplates", Tasker_V1_ListTaskTemplatesRequest())
        #expect(listed.templates.map(\.name) == ["order"])
        #expect(listed.templates.first?.steps.count == 4)
        await harness.stop()
    }

    @Test func anEmptyVersionRunsTheNewestEvenWhenAnotherNodeRegisteredIt() async throws {
        let harness = try await TaskerHarness.start()
        let otherNode = TaskEngine(pool: harness.pool)
        _ = try await harness.register(template(diamond))
        #expect(try await harness.submit { _ in }.task.version == "1.0.0")
        var newer = template(Array(diamond.prefix(2)))
        newer.version = "2.0.0"
        #expect(try await otherNode.registerTemplate(newer).created)
        let submitted = try await harness.submit { _ in }.task
        #expect(submitted.version == "2.0.0")
        #expect(submitted.steps.map(\.name) == ["a", "b"])
        #expect(try await harness.history(submitted.taskID).count == 2, "the task's first transition and its root's")
        #expect(try await harness.submit { $0.version = "1.0.0" }.task.steps.count == 4, "older versions stay runnable")
        #expect(try await otherNode.submitTask(.with { $0.name = "order" }).task.version == "2.0.0")
        await harness.stop()
    }

    @Test func anEmptyVersionRunsTheHighestVersionNotTheLastRegistered() async throws {
        let harness = try await TaskerHarness.start()
        let otherNode = TaskEngine(pool: harness.pool)
        func version(_ text: String, on engine: TaskEngine? = nil) async throws {
            var registered = template(diamond)
            registered.version = text
            if let engine { _ = try await engine.registerTemplate(registered) } else { _ = try await harness.register(registered) }
        }
        func newest(on engine: TaskEngine? = nil) async throws -> String {
            if let engine { return try await engine.submitTask(.with { $0.name = "order" }).task.version }
            return try await harness.submit { _ in }.task.version
        }
        try await version("1.10")
        try await version("1.9")
        #expect(try await newest() == "1.10", "1.9 came later but is lower")
        try await version("1.10.0", on: otherNode)
        #expect(try await newest() == "1.10.0", "a higher version on another node is seen at the next submit")
        try await version("1.2.0-rc1")
        try await version("01.10.0")
        #expect(try await newest() == "01.10.0", "one order (01 is 1): the later registered")
        try await version("v2")
        #expect(try await newest(on: otherNode) == "v2", "a part that is no number is above every number")
        #expect(try await harness.pool.withConnection {
            try $0.query("SELECT version FROM task_templates WHERE name = 'order' ORDER BY version_order, registration")
        }.map { $0["version"] ?? "" } == ["1.2.0-rc1", "1.9", "1.10", "1.10.0", "01.10.0", "v2"])
        await harness.stop()
    }

    @Test func submitCreatesEveryStepAndEnqueuesTheRoots() async throws {
        let harness = try await TaskerHarness.start()
        _ = try await harness.register(template(diamond))
        let response = try await harness.submit { request in
            request.initiator = "test"
            request.tags = ["a tag", "with,comma"]
            request.context = try! Google_Protobuf_Struct(jsonString: #"{"cart_id": 7}"#)
        }
        #expect(response.created)
        let task = response.task
        #expect(task.status == .pending)
        #expect(task.tags == ["a tag", "with,comma"])
        #expect(task.context.fields["cart_id"]?.numberValue == 7)
        let statuses = Dictionary(uniqueKeysWithValues: task.steps.map { ($0.name, $0.status) })
        #expect(statuses == ["a": .enqueued, "b": .pending, "c": .pending, "d": .pending])
        #expect(task.steps.first { $0.name == "d" }?.dependsOn == ["b", "c"])

        var fetched: Tasker_V1_Task = try await harness.call("GetTask", Tasker_V1_GetTaskRequest.with { $0.taskID = task.taskID })
        // A read says why each step waits; the rest is the task as submitted.
        #expect(fetched.steps.map(\.waitingReason) == [
            "no connected worker runs handler 'a_handler'", "waits for a", "waits for a", "waits for b, c",
        ])
        for index in fetched.steps.indices { fetched.steps[index].waitingReason = "" }
        #expect(fetched == task)

        let history = try await harness.history(task.taskID)
        #expect(history.map(\.sequence) == [1, 2])
        #expect(history[1].step == "a" && history[1].status == StepStatus.enqueued.rawValue && history[1].previous == StepStatus.pending.rawValue)
        await harness.stop()
    }

    @Test func bypassStartsSkippableStepsSkipped() async throws {
        let harness = try await TaskerHarness.start()
        var skippable = step("a")
        skippable.skippable = true
        _ = try await harness.register(template([skippable, step("b", dependsOn: ["a"])]))
        let task = try await harness.submit { $0.bypassSteps = ["a"] }.task
        #expect(task.steps.map(\.status) == [.skipped, .enqueued], "b's only dependency was bypassed")
        await expectStatus(.invalidArgument, containing: "not skippable") { _ = try await harness.submit { $0.bypassSteps = ["b"] } }
        await expectStatus(.invalidArgument, containing: "'ghost'") { _ = try await harness.submit { $0.bypassSteps = ["ghost"] } }
        await harness.stop()
    }

    @Test func contextIsCheckedAgainstTheSchema() async throws {
        let harness = try await TaskerHarness.start()
        _ = try await harness.register(template([step("a")], schema: #"{"type": "object", "required": ["cart_id"], "properties": {"cart_id": {"type": "integer"}}}"#))
        await expectStatus(.invalidArgument, containing: "$.cart_id: expected integer, got string") {
            _ = try await harness.submit { $0.context = try! Google_Protobuf_Struct(jsonString: #"{"cart_id": "x"}"#) }
        }
        await expectStatus(.invalidArgument, containing: "$.cart_id: is required") { _ = try await harness.submit { _ in } }
        #expect(try await harness.submit { $0.context = try! Google_Protobuf_Struct(jsonString: #"{"cart_id": 1}"#) }.created)
        await harness.stop()
    }

    @Test func idempotencyKeyReturnsTheSameTask() async throws {
        let harness = try await TaskerHarness.start()
        _ = try await harness.register(template(diamond))
        let first = try await harness.submit { $0.idempotencyKey = "order-7" }
        let second = try await harness.submit { $0.idempotencyKey = "order-7" }
        #expect(first.created && !second.created)
        #expect(first.task.taskID == second.task.taskID)
        let other = try await harness.submit { $0.idempotencyKey = "order-8" }
        #expect(other.task.taskID != first.task.taskID)
        let count = try await harness.pool.withConnection { try $0.query("SELECT count(*) AS n FROM tasks") }.first?.int("n")
        #expect(count == 2)
        await harness.stop()
    }

    @Test func aRepeatedKeyWithAnotherContextIsRefusedAndTheSameContextInAnyFormIsARepeat() async throws {
        let harness = try await TaskerHarness.start()
        _ = try await harness.register(template(diamond))
        let first = try await harness.submit {
            $0.idempotencyKey = "order-9"
            $0.context = try! Google_Protobuf_Struct(jsonString: #"{"cart_id": 7, "email": "ada@example.com"}"#)
        }
        let again = try await harness.submit {
            $0.idempotencyKey = "order-9"
            $0.context = try! Google_Protobuf_Struct(jsonString: #"{"email": "ada@example.com", "cart_id": 7.0}"#)
        }
        #expect(first.created && !again.created && again.task.taskID == first.task.taskID)
        await expectStatus(.alreadyExists, containing: "idempotency key 'order-9' already names task \(first.task.taskID)") {
            _ = try await harness.submit {
                $0.idempotencyKey = "order-9"
                $0.context = try! Google_Protobuf_Struct(jsonString: #"{"cart_id": 8, "email": "ada@example.com"}"#)
            }
        }
        let count = try await harness.pool.withConnection { try $0.query("SELECT count(*) AS n FROM tasks") }.first?.int("n")
        #expect(count == 1)
        await harness.stop()
    }

    @Test func concurrentSubmitsWithOneKeyCreateOneTask() async throws {
        let harness = try await TaskerHarness.start()
        _ = try await harness.register(template(diamond))
        let results = try await withThrowingTaskGroup(of: (String, Bool).self) { group in
            for _ in 0..<16 {
                group.addTask {
                    let response = try await harness.submit { $0.idempotencyKey = "same" }
                    return (response.task.taskID, response.created)
                }
            }
            return try await group.reduce(into: [(String, Bool)]()) { $0.append($1) }
        }
        #expect(Set(results.map(\.0)).count == 1)
        #expect(results.filter(\.1).count == 1)
        await harness.stop()
    }

    @Test func unknownTemplatesAndTasksAreNotFound() async throws {
        let harness = try await TaskerHarness.start()
        await expectStatus(.notFound, containing: "no template named 'order'") { _ = try await harness.submit { _ in } }
        _ = try await harness.register(template(diamond))
        await expectStatus(.notFound, containing: "version '9'") { _ = try await harness.submit { $0.version = "9" } }
        await expectStatus(.invalidArgument, containing: "is not a UUID") {
            let _: Tasker_V1_Task = try await harness.call("GetTask", Tasker_V1_GetTaskRequest.with { $0.taskID = "42" })
        }
        await expectStatus(.notFound) {
            let _: Tasker_V1_Task = try await harness.call("GetTask", Tasker_V1_GetTaskRequest.with { $0.taskID = UUID().uuidString })
        }
        await harness.stop()
    }
}

@Suite(.timeLimit(.minutes(2))) struct DatabaseOutageTests {
    @Test func callsAreUnavailableWhilePostgresIsDownAndWorkAfter() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tasker-outage-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        var database = try PrivatePostgres(in: folder)
        let port = database.port
        let pool = PostgresPool(url: database.url, size: 2)
        try await Migrator().migrate(pool)
        let server = try await RPCServer.start(
            configuration: .init(host: "127.0.0.1", port: 0), services: [TaskerService(engine: TaskEngine(pool: pool))])
        let client = RPCClient(host: "127.0.0.1", port: server.port)
        var request = Tasker_V1_RegisterTaskTemplateRequest()
        request.template = template(diamond)
        _ = try await client.unary("/tasker.v1.Tasker/RegisterTaskTemplate", request, as: Tasker_V1_RegisterTaskTemplateResponse.self)

        database.stop()
        await expectStatus(.unavailable, containing: "database is unavailable") {
            _ = try await client.unary("/tasker.v1.Tasker/ListTaskTemplates", Tasker_V1_ListTaskTemplatesRequest(), as: Tasker_V1_ListTaskTemplatesResponse.self)
        }

        database = try PrivatePostgres(in: folder, port: port)
        let listed = try await client.unary(
            "/tasker.v1.Tasker/ListTaskTemplates", Tasker_V1_ListTaskTemplatesRequest(), as: Tasker_V1_ListTaskTemplatesResponse.self)
        #expect(listed.templates.map(\.name) == ["order"])
        await client.close()
        await server.shutdownNow()
        await pool.shutdown()
        database.stop()
    }
}
