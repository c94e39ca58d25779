import NIOConcurrencyHelpers

public typealias HealthStatus = Grpc_Health_V1_HealthCheckResponse.ServingStatus

/// `grpc.health.v1.Health`: Check answers the current status of a service ("" is the whole
/// server); Watch sends it and then every change until the call ends.
public final class HealthService: RPCService {
    private struct State {
        var statuses: [String: HealthStatus] = ["": .serving]
        var watchers: [String: [Int: AsyncStream<HealthStatus>.Continuation]] = [:]
        var nextWatcher = 0
        var shutDown = false
    }

    private let state = NIOLockedValueBox(State())

    public init() {}

    public func setStatus(_ status: HealthStatus, service: String = "") {
        let watchers = state.withLockedValue { state -> [AsyncStream<HealthStatus>.Continuation] in
            guard !state.shutDown, state.statuses[service] != status else { return [] }
            state.statuses[service] = status
            return Array(state.watchers[service, default: [:]].values)
        }
        for watcher in watchers { watcher.yield(status) }
    }

    /// The whole server and every service it knows take `status` (a store it needs went away,
    /// or came back).
    public func setStatusOfAll(_ status: HealthStatus) {
        let services = state.withLockedValue { Array($0.statuses.keys) }
        for service in services { setStatus(status, service: service) }
    }

    /// Every service goes NOT_SERVING and stays so: the server is stopping.
    func shutdown() {
        let watchers = state.withLockedValue { state -> [AsyncStream<HealthStatus>.Continuation] in
            state.shutDown = true
            for key in state.statuses.keys { state.statuses[key] = .notServing }
            return state.watchers.values.flatMap(\.values)
        }
        for watcher in watchers { watcher.yield(.notServing) }
    }

    public func status(of service: String) -> HealthStatus? {
        state.withLockedValue { $0.statuses[service] }
    }

    public func register(into router: inout RPCRouter) {
        router.registerUnary("/grpc.health.v1.Health/Check") {
            (request: Grpc_Health_V1_HealthCheckRequest, _) -> Grpc_Health_V1_HealthCheckResponse in
            guard let status = self.status(of: request.service) else {
                throw RPCError(.notFound, "unknown service '\(request.service)'")
            }
            var response = Grpc_Health_V1_HealthCheckResponse()
            response.status = status
            return response
        }
        router.registerServerStreaming("/grpc.health.v1.Health/Watch") {
            (request: Grpc_Health_V1_HealthCheckRequest, writer: ResponseWriter<Grpc_Health_V1_HealthCheckResponse>, _) in
            let (updates, continuation) = AsyncStream.makeStream(of: HealthStatus.self, bufferingPolicy: .bufferingNewest(1))
            let (id, current) = self.state.withLockedValue { state in
                let id = state.nextWatcher
                state.nextWatcher += 1
                state.watchers[request.service, default: [:]][id] = continuation
                return (id, state.statuses[request.service] ?? .serviceUnknown)
            }
            defer {
                _ = self.state.withLockedValue { $0.watchers[request.service]?.removeValue(forKey: id) }
                continuation.finish()
            }
            var response = Grpc_Health_V1_HealthCheckResponse()
            response.status = current
            try await writer.write(response)
            for await status in updates where status != response.status {
                response.status = status
                try await writer.write(response)
            }
        }
    }
}
