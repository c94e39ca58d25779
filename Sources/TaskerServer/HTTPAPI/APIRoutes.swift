import Foundation
import HTTPTypes
import Hummingbird
import SwiftProtobuf
import TaskerAuth
import TaskerEngine
import TaskerHTTP
import TaskerProto
import TaskerRPC

/// The JSON API of DESIGN §7 under `/api/v1`: each route is an RPC of `tasker.v1.Tasker`,
/// called in process (`LocalCalls`), so both APIs share one engine, one gate and one set of
/// refusals. Updates stream as Server-Sent Events with `id:` = the task's sequence.
public struct APIRoutes: HTTPRoutes {
    let calls: LocalCalls
    /// nil: `--auth` is off and every caller may do everything.
    let gate: TokenGate?
    let tickets: StreamTickets
    let heartbeat: Duration

    public init(calls: LocalCalls, gate: TokenGate?, heartbeat: Duration = .seconds(15)) {
        self.calls = calls
        self.gate = gate
        self.heartbeat = heartbeat
        self.tickets = StreamTickets()
    }

    static let service = "/tasker.v1.Tasker/"
    /// The methods the API reaches, as `/api/v1/session` reports which a caller may use.
    static let methods = [
        "GetTask", "ListTasks", "SubmitTask", "CancelTask", "RetryStep", "ResolveStep", "ListTaskTemplates", "RegisterTaskTemplate",
        "StreamStepUpdates", "ListWorkers", "ListQueues", "ListSchedules", "CreateSchedule", "DeleteSchedule", "SetSchedulePaused",
    ]

    static let taskStatus = APIExchange.QueryField.oneOf(
        prefix: "TASK_STATUS_", names: Tasker_V1_TaskStatus.allCases.filter { $0 != .unspecified }.map(\.contractName))

    public func add(to router: Router<BasicRequestContext>) {
        let api = router.group("/api/v1")
        route(api, .get, "tasks", "ListTasks", Tasker_V1_ListTasksRequest.self, Tasker_V1_ListTasksResponse.self,
              query: ["name": .text, "status": Self.taskStatus, "tag": .text, "page_size": .text, "page_token": .text])
        route(api, .post, "tasks", "SubmitTask", Tasker_V1_SubmitTaskRequest.self, Tasker_V1_SubmitTaskResponse.self, body: true)
        route(api, .get, "tasks/{id}", "GetTask", Tasker_V1_GetTaskRequest.self, Tasker_V1_Task.self) { request, context throws(RPCError) in
            request.taskID = try Self.pathField("task_id", request.taskID, APIExchange.parameter("id", context))
        }
        route(api, .post, "tasks/{id}:cancel", "CancelTask", Tasker_V1_CancelTaskRequest.self, Tasker_V1_Task.self, body: true) {
            request, context throws(RPCError) in
            request.taskID = try Self.pathField("task_id", request.taskID, APIExchange.parameter("id", context))
        }
        route(api, .post, "tasks/{id}/steps/{step}:retry", "RetryStep", Tasker_V1_RetryStepRequest.self, Tasker_V1_Task.self, body: true) {
            request, context throws(RPCError) in
            request.taskID = try Self.pathField("task_id", request.taskID, APIExchange.parameter("id", context))
            request.stepName = try Self.pathField("step_name", request.stepName, APIExchange.parameter("step", context))
        }
        route(api, .post, "tasks/{id}/steps/{step}:resolve", "ResolveStep", Tasker_V1_ResolveStepRequest.self, Tasker_V1_Task.self, body: true) {
            request, context throws(RPCError) in
            request.taskID = try Self.pathField("task_id", request.taskID, APIExchange.parameter("id", context))
            request.stepName = try Self.pathField("step_name", request.stepName, APIExchange.parameter("step", context))
        }
        route(api, .get, "templates", "ListTaskTemplates", Tasker_V1_ListTaskTemplatesRequest.self, Tasker_V1_ListTaskTemplatesResponse.self,
              query: ["page_size": .text, "page_token": .text])
        route(api, .post, "templates", "RegisterTaskTemplate", Tasker_V1_RegisterTaskTemplateRequest.self,
              Tasker_V1_RegisterTaskTemplateResponse.self, body: true)
        route(api, .get, "workers", "ListWorkers", Tasker_V1_ListWorkersRequest.self, Tasker_V1_ListWorkersResponse.self, query: ["handler": .text])
        route(api, .get, "queues", "ListQueues", Tasker_V1_ListQueuesRequest.self, Tasker_V1_ListQueuesResponse.self)
        route(api, .get, "schedules", "ListSchedules", Tasker_V1_ListSchedulesRequest.self, Tasker_V1_ListSchedulesResponse.self)
        route(api, .post, "schedules", "CreateSchedule", Tasker_V1_CreateScheduleRequest.self, Tasker_V1_CreateScheduleResponse.self, body: true)
        route(api, .delete, "schedules/{name}", "DeleteSchedule", Tasker_V1_DeleteScheduleRequest.self, Tasker_V1_DeleteScheduleResponse.self) {
            request, context throws(RPCError) in
            request.name = APIExchange.parameter("name", context)
        }
        for (action, paused) in [("pause", true), ("resume", false)] {
            route(api, .post, RouterPath("schedules/{name}:\(action)"), "SetSchedulePaused", Tasker_V1_SetSchedulePausedRequest.self,
                  Tasker_V1_Schedule.self, body: true) { request, context throws(RPCError) in
                request.name = try Self.pathField("name", request.name, APIExchange.parameter("name", context))
                request.paused = paused
            }
        }

        api.get("tasks/{id}/updates") { request, context in
            await updates(request, taskID: APIExchange.parameter("id", context))
        }
        api.get("updates") { request, _ in
            await updates(request, taskID: nil)
        }
        api.get("session") { request, _ in
            await session(request)
        }
        api.post("tickets") { request, _ in
            await ticket(request)
        }
    }

    /// One route of one unary RPC: the request from the query (GET) or the JSON body (POST),
    /// then what `fill` takes from the path.
    private func route<Message: SwiftProtobuf.Message, Reply: SwiftProtobuf.Message>(
        _ api: RouterGroup<BasicRequestContext>, _ method: HTTPRequest.Method, _ path: RouterPath, _ rpc: String,
        _: Message.Type, _: Reply.Type, query allowed: [String: APIExchange.QueryField] = [:], body: Bool = false,
        fill: @escaping @Sendable (inout Message, BasicRequestContext) throws(RPCError) -> Void = { _, _ throws(RPCError) in }
    ) {
        api.on(path, method: method) { request, context in
            var request = request
            do throws(RPCError) {
                var message: Message
                if body {
                    _ = try APIExchange.parameters(request.uri.queryParameters, allowed: [:])
                    message = try await APIExchange.request(Message.self, body: &request)
                } else {
                    message = try APIExchange.request(Message.self, query: APIExchange.parameters(request.uri.queryParameters, allowed: allowed))
                }
                try fill(&message, context)
                let reply = try await calls.unary(Self.service + rpc, message, from: caller(request), as: Reply.self)
                return try APIExchange.json(reply)
            } catch {
                return APIExchange.refusal(error)
            }
        }
    }

    /// A field the path names: the body may repeat it, not contradict it.
    static func pathField(_ name: String, _ inBody: String, _ inPath: String) throws(RPCError) -> String {
        guard inBody.isEmpty || inBody == inPath else {
            throw RPCError(.invalidArgument, "\(name) \(InputCheck.quoted(inBody)) in the body is not the path's \(InputCheck.quoted(inPath))")
        }
        return inPath
    }

    /// The caller as the RPCs would see it: its bearer header, or the one its ticket stands for.
    private func caller(_ request: Request, ticket: Bool = false) throws(RPCError) -> LocalCalls.Caller {
        var authorization = request.headers[.authorization]
        if ticket, let given = request.uri.queryParameters["ticket"].map(String.init) {
            guard let redeemed = tickets.redeem(given) else {
                throw RPCError(.unauthenticated, "the ticket is unknown, spent or expired: a ticket opens one stream, within \(Int(tickets.lifetime)) s of POST /api/v1/tickets, on the node that issued it")
            }
            authorization = redeemed
        }
        var metadata = Metadata()
        if let authorization { metadata.add("authorization", authorization) }
        return LocalCalls.Caller(metadata: metadata, peer: "http")
    }

    /// `tasks/{id}/updates` (the task's updates after `after_sequence`, or after the
    /// `Last-Event-ID` a reconnecting EventSource sends) and `updates` (every task's, live).
    private func updates(_ request: Request, taskID: String?) async -> Response {
        let path = Self.service + "StreamStepUpdates"
        do throws(RPCError) {
            var query = try APIExchange.parameters(request.uri.queryParameters, allowed: taskID == nil ? ["ticket": .text] : ["after_sequence": .text, "ticket": .text])
            query["ticket"] = nil
            var message = try APIExchange.request(Tasker_V1_StreamStepUpdatesRequest.self, query: query)
            if let taskID {
                message.taskID = taskID
                if let resumed = request.headers[HTTPField.Name("Last-Event-ID")!] {
                    guard let sequence = UInt64(resumed.trimmingCharacters(in: .whitespaces)) else {
                        throw RPCError(.invalidArgument, "Last-Event-ID \(InputCheck.quoted(resumed)) is not a sequence number")
                    }
                    message.afterSequence = sequence
                }
            }
            let caller = try caller(request, ticket: true)
            try await calls.admit(path, from: caller)
            if let taskID {
                // Refused here, an unknown task is a 404 rather than the stream's last event.
                _ = try await calls.unary(Self.service + "GetTask", Tasker_V1_GetTaskRequest.with { $0.taskID = taskID }, from: caller,
                                          as: Tasker_V1_Task.self)
            }
            return EventStream.response(heartbeat: heartbeat) { [calls, message] send throws(RPCError) in
                try await calls.serverStreaming(path, message, from: caller) { (update: Tasker_V1_StepUpdate) in
                    await send(EventStream.event(id: update.sequence, data: try update.jsonUTF8Data(options: APIExchange.encoding)))
                }
            }
        } catch {
            return APIExchange.refusal(error)
        }
    }

    /// Who the caller is and which of the API's methods it may call: the dashboard shows only
    /// the actions it may take.
    private func session(_ request: Request) async -> Response {
        guard let gate else {
            return Response.json(.ok, ["auth": false, "may": Self.methods])
        }
        do {
            let record = try await gate.authenticate(try caller(request).metadata)
            let may = Self.methods.filter { method in Role.required(for: Self.service + method).map(record.role.permits) ?? true }
            return Response.json(.ok, ["auth": true, "name": record.name, "role": record.role.rawValue, "may": may])
        } catch let error as RPCError {
            return APIExchange.refusal(error)
        } catch {
            return APIExchange.refusal(RPCError(.unknown, "the token could not be checked: \(error)"))
        }
    }

    private func ticket(_ request: Request) async -> Response {
        do {
            let caller = try caller(request)
            if let gate { _ = try await gate.authenticate(caller.metadata) }
            let ticket = tickets.issue(authorization: caller.metadata.firstString("authorization"))
            return Response.json(.ok, ["ticket": ticket, "expires_in_seconds": Int(tickets.lifetime)])
        } catch let error as RPCError {
            return APIExchange.refusal(error)
        } catch {
            return APIExchange.refusal(RPCError(.unknown, "the token could not be checked: \(error)"))
        }
    }
}
