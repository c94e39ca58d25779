import Foundation
import TaskerEngine
import TaskerProto
import TaskerRPC

/// `tasker.v1.Tasker` bound to the engine: requests in, engine errors out as gRPC statuses.
public struct TaskerService: RPCService {
    let engine: TaskEngine
    let updates: StepUpdateStream
    /// A node unseen for longer is not counted in ListWorkers, ListQueues or waiting reasons.
    let nodeTimeout: Double

    /// `hub`: where the engine's transitions (and other nodes', through a relay) reach the
    /// watchers of StreamStepUpdates; without one, a hub of this service's own follows the
    /// engine. `quietInterval`: how long a watcher of one task hears nothing before the
    /// stored history is read for what pub/sub may have lost.
    public init(engine: TaskEngine, hub: UpdateHub? = nil, quietInterval: Duration = .seconds(2), nodeTimeout: Double = 7) {
        self.engine = engine
        self.nodeTimeout = nodeTimeout
        let watched = hub ?? {
            let own = UpdateHub()
            engine.observe(own)
            return own
        }()
        updates = StepUpdateStream(engine: engine, hub: watched, quietInterval: quietInterval)
    }

    /// Server reflection over the tasker.v1 files (and the health service's).
    public static func reflection(withWorkers: Bool = false) throws -> ReflectionService {
        try ReflectionService(
            descriptorSet: ServedProtos.descriptorSet,
            services: ["tasker.v1.Tasker"] + (withWorkers ? ["tasker.v1.Workers"] : []) + ["tasker.v1.Admin", "grpc.health.v1.Health"])
    }

    public func register(into router: inout RPCRouter) {
        let prefix = "/tasker.v1.Tasker/"
        router.registerUnary(prefix + "RegisterTaskTemplate") {
            (request: Tasker_V1_RegisterTaskTemplateRequest, _) -> Tasker_V1_RegisterTaskTemplateResponse in
            try await Self.mapped {
                let (template, created) = try await engine.registerTemplate(request.template)
                var response = Tasker_V1_RegisterTaskTemplateResponse()
                response.template = template
                response.created = created
                return response
            }
        }
        router.registerUnary(prefix + "ListTaskTemplates") {
            (request: Tasker_V1_ListTaskTemplatesRequest, _) -> Tasker_V1_ListTaskTemplatesResponse in
            try await Self.mapped { try await engine.listTemplates(request) }
        }
        router.registerUnary(prefix + "SubmitTask") {
            (request: Tasker_V1_SubmitTaskRequest, _) -> Tasker_V1_SubmitTaskResponse in
            try await Self.mapped {
                let (task, created) = try await engine.submitTask(request)
                var response = Tasker_V1_SubmitTaskResponse()
                response.task = task
                response.created = created
                return response
            }
        }
        router.registerUnary(prefix + "GetTask") { (request: Tasker_V1_GetTaskRequest, _) -> Tasker_V1_Task in
            try await Self.mapped { try await engine.getTask(request.taskID, explainingWaits: nodeTimeout) }
        }
        router.registerUnary(prefix + "ListTasks") { (request: Tasker_V1_ListTasksRequest, _) -> Tasker_V1_ListTasksResponse in
            try await Self.mapped { try await engine.listTasks(request) }
        }
        router.registerUnary(prefix + "CancelTask") { (request: Tasker_V1_CancelTaskRequest, _) -> Tasker_V1_Task in
            try await Self.mapped { try await engine.cancelTask(request.taskID, reason: request.reason) }
        }
        router.registerUnary(prefix + "RetryStep") { (request: Tasker_V1_RetryStepRequest, _) -> Tasker_V1_Task in
            try await Self.mapped { try await engine.retryStep(taskID: request.taskID, stepName: request.stepName) }
        }
        router.registerUnary(prefix + "ResolveStep") { (request: Tasker_V1_ResolveStepRequest, _) -> Tasker_V1_Task in
            try await Self.mapped {
                try await engine.resolveStep(taskID: request.taskID, stepName: request.stepName, results: request.results, reason: request.reason)
            }
        }
        router.registerServerStreaming(prefix + "StreamStepUpdates") {
            (request: Tasker_V1_StreamStepUpdatesRequest, writer: ResponseWriter<Tasker_V1_StepUpdate>, _) in
            try await updates.serve(request, writer)
        }
        router.registerUnary(prefix + "ListWorkers") { (request: Tasker_V1_ListWorkersRequest, _) -> Tasker_V1_ListWorkersResponse in
            try await Self.mapped {
                let workers = try await engine.listWorkers(handler: request.handler, liveWithin: nodeTimeout)
                return .with { $0.workers = workers }
            }
        }
        router.registerUnary(prefix + "ListQueues") { (_: Tasker_V1_ListQueuesRequest, _) -> Tasker_V1_ListQueuesResponse in
            try await Self.mapped {
                let queues = try await engine.listQueues(liveWithin: nodeTimeout)
                return .with { $0.queues = queues }
            }
        }
        router.registerUnary(prefix + "CreateSchedule") {
            (request: Tasker_V1_CreateScheduleRequest, _) -> Tasker_V1_CreateScheduleResponse in
            try await Self.mapped {
                let (schedule, created) = try await engine.createSchedule(request.schedule)
                return .with {
                    $0.schedule = schedule
                    $0.created = created
                }
            }
        }
        router.registerUnary(prefix + "ListSchedules") { (_: Tasker_V1_ListSchedulesRequest, _) -> Tasker_V1_ListSchedulesResponse in
            try await Self.mapped {
                let schedules = try await engine.listSchedules()
                return .with { $0.schedules = schedules }
            }
        }
        router.registerUnary(prefix + "DeleteSchedule") { (request: Tasker_V1_DeleteScheduleRequest, _) -> Tasker_V1_DeleteScheduleResponse in
            try await Self.mapped {
                try await engine.deleteSchedule(request.name)
                return Tasker_V1_DeleteScheduleResponse()
            }
        }
        router.registerUnary(prefix + "SetSchedulePaused") { (request: Tasker_V1_SetSchedulePausedRequest, _) -> Tasker_V1_Schedule in
            try await Self.mapped { try await engine.setSchedulePaused(request.name, paused: request.paused) }
        }
    }

    /// Runs an engine call, turning its refusals into the statuses of DESIGN §2.
    static func mapped<Response>(_ body: () async throws -> Response) async throws -> Response {
        do {
            return try await body()
        } catch let error as EngineError {
            throw RPCError(error)
        }
    }
}

extension RPCError {
    init(_ error: EngineError) {
        switch error {
        case .invalidArgument(let message): self.init(.invalidArgument, message)
        case .notFound(let message): self.init(.notFound, message)
        case .alreadyExists(let message): self.init(.alreadyExists, message)
        case .failedPrecondition(let message): self.init(.failedPrecondition, message)
        case .unavailable(let message): self.init(.unavailable, message)
        case .internal(let message): self.init(.internal, message)
        }
    }
}
