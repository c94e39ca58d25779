import Foundation
import SwiftProtobuf
import TaskerProto
import TaskerRPC
import TaskerTLS

/// A typed client of `tasker.v1.Tasker`: templates, tasks, and the live updates of steps.
/// A refusal by the server is thrown as `RPCError`, with the status code and message of
/// DESIGN §2.
///
///     let tasker = TaskerClient(host: "127.0.0.1", port: 7420)
///     let task = try await tasker.submit("checkout", context: ["cart_id": 17]).task
///     for try await update in tasker.updates(of: task.taskID) { print(update.stepName, update.status) }
public final class TaskerClient: Sendable {
    private let rpc: RPCClient
    private static let prefix = "/tasker.v1.Tasker/"

    /// With `tls`, the connection is HTTP/2 over TLS; without, plaintext h2c. A `token` is
    /// sent with every call, for a server that runs with `--auth`.
    public init(host: String, port: Int, tls: ClientTLS? = nil, token: String? = nil) {
        var configuration = RPCClient.Configuration()
        configuration.security = tls
        if let token { configuration.metadata.add("authorization", "Bearer \(token)") }
        rpc = RPCClient(host: host, port: port, configuration: configuration)
    }

    public func close() async {
        await rpc.close()
    }

    private func call<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ method: String, _ request: Request, as: Response.Type = Response.self, service: String = prefix
    ) async throws -> Response {
        try await rpc.unary(service + method, request, as: Response.self)
    }

    // MARK: Templates

    public func register(_ template: Tasker_V1_TaskTemplate) async throws -> Tasker_V1_RegisterTaskTemplateResponse {
        try await call("RegisterTaskTemplate", Tasker_V1_RegisterTaskTemplateRequest.with { $0.template = template })
    }

    /// Every registered template, read page by page.
    public func templates() async throws -> [Tasker_V1_TaskTemplate] {
        var templates: [Tasker_V1_TaskTemplate] = []
        var token = ""
        repeat {
            let response: Tasker_V1_ListTaskTemplatesResponse = try await call(
                "ListTaskTemplates", Tasker_V1_ListTaskTemplatesRequest.with { $0.pageToken = token })
            templates += response.templates
            token = response.nextPageToken
        } while !token.isEmpty
        return templates
    }

    // MARK: Tasks

    public func submit(_ request: Tasker_V1_SubmitTaskRequest) async throws -> Tasker_V1_SubmitTaskResponse {
        try await call("SubmitTask", request)
    }

    /// Submits a task of the newest version of the template `name`.
    public func submit(_ name: String, context: Google_Protobuf_Struct = .init(), reason: String = "") async throws -> Tasker_V1_SubmitTaskResponse {
        try await submit(.with {
            $0.name = name
            $0.context = context
            $0.reason = reason
        })
    }

    public func task(_ id: String) async throws -> Tasker_V1_Task {
        try await call("GetTask", Tasker_V1_GetTaskRequest.with { $0.taskID = id })
    }

    public func tasks(_ request: Tasker_V1_ListTasksRequest = .init()) async throws -> Tasker_V1_ListTasksResponse {
        try await call("ListTasks", request)
    }

    public func cancel(_ id: String, reason: String = "") async throws -> Tasker_V1_Task {
        try await call("CancelTask", Tasker_V1_CancelTaskRequest.with {
            $0.taskID = id
            $0.reason = reason
        })
    }

    public func retry(_ id: String, step: String) async throws -> Tasker_V1_Task {
        try await call("RetryStep", Tasker_V1_RetryStepRequest.with {
            $0.taskID = id
            $0.stepName = step
        })
    }

    public func resolve(_ id: String, step: String, results: Google_Protobuf_Struct = .init(), reason: String = "") async throws -> Tasker_V1_Task {
        try await call("ResolveStep", Tasker_V1_ResolveStepRequest.with {
            $0.taskID = id
            $0.stepName = step
            $0.results = results
            $0.reason = reason
        })
    }

    // MARK: The cluster

    /// The workers connected to every node; with a handler, those that run it.
    public func workers(handler: String = "") async throws -> [Tasker_V1_Worker] {
        let response: Tasker_V1_ListWorkersResponse = try await call("ListWorkers", Tasker_V1_ListWorkersRequest.with { $0.handler = handler })
        return response.workers
    }

    /// Each handler's steps and workers across the cluster.
    public func queues() async throws -> [Tasker_V1_HandlerQueue] {
        let response: Tasker_V1_ListQueuesResponse = try await call("ListQueues", Tasker_V1_ListQueuesRequest())
        return response.queues
    }

    // MARK: Schedules

    /// Creates a schedule; the same one again answers created = false.
    public func createSchedule(_ schedule: Tasker_V1_Schedule) async throws -> Tasker_V1_CreateScheduleResponse {
        try await call("CreateSchedule", Tasker_V1_CreateScheduleRequest.with { $0.schedule = schedule })
    }

    /// Every schedule, by name.
    public func schedules() async throws -> [Tasker_V1_Schedule] {
        let response: Tasker_V1_ListSchedulesResponse = try await call("ListSchedules", Tasker_V1_ListSchedulesRequest())
        return response.schedules
    }

    public func deleteSchedule(name: String) async throws {
        let _: Tasker_V1_DeleteScheduleResponse = try await call("DeleteSchedule", Tasker_V1_DeleteScheduleRequest.with { $0.name = name })
    }

    /// Pauses a schedule, or resumes it from its next firing after now.
    public func setSchedulePaused(name: String, paused: Bool) async throws -> Tasker_V1_Schedule {
        try await call("SetSchedulePaused", Tasker_V1_SetSchedulePausedRequest.with {
            $0.name = name
            $0.paused = paused
        })
    }

    // MARK: API tokens (tasker.v1.Admin, with an admin token)

    private static let admin = "/tasker.v1.Admin/"

    /// Makes a token; the response holds its text, shown only this once.
    public func createToken(name: String, role: Tasker_V1_Role, expiresIn seconds: Double? = nil) async throws -> Tasker_V1_CreateTokenResponse {
        try await call("CreateToken", Tasker_V1_CreateTokenRequest.with {
            $0.name = name
            $0.role = role
            if let seconds { $0.expiresIn = Google_Protobuf_Duration(rounding: seconds, rule: .toNearestOrAwayFromZero) }
        }, service: Self.admin)
    }

    /// Every token, revoked and expired ones too, newest first.
    public func tokens() async throws -> [Tasker_V1_ApiToken] {
        let response: Tasker_V1_ListTokensResponse = try await call("ListTokens", Tasker_V1_ListTokensRequest(), service: Self.admin)
        return response.tokens
    }

    public func revokeToken(name: String) async throws -> Tasker_V1_ApiToken {
        try await call("RevokeToken", Tasker_V1_RevokeTokenRequest.with { $0.name = name }, service: Self.admin)
    }

    // MARK: Updates

    /// The task's updates after `sequence`, then live, until the update that finishes the
    /// task; with no task id, every task's updates from now on, without end.
    public func updates(of taskID: String, after sequence: UInt64 = 0) -> AsyncThrowingStream<Tasker_V1_StepUpdate, any Error> {
        let rpc = self.rpc
        return AsyncThrowingStream { continuation in
            let reader = Task {
                do {
                    let call = try await rpc.serverStreaming(
                        Self.prefix + "StreamStepUpdates",
                        Tasker_V1_StreamStepUpdatesRequest.with {
                            $0.taskID = taskID
                            $0.afterSequence = sequence
                        }, as: Tasker_V1_StepUpdate.self)
                    try await withTaskCancellationHandler {
                        for try await update in call.responses { continuation.yield(update) }
                    } onCancel: {
                        call.cancel()
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in reader.cancel() }
        }
    }
}
