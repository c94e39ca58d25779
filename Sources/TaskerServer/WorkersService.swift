import SwiftProtobuf
import TaskerAuth
import TaskerDispatch
import TaskerEngine
import TaskerProto
import TaskerRPC

/// `tasker.v1.Workers/Connect` bound to the node's dispatcher: the first message registers the
/// worker, then its results and heartbeats go to the dispatcher while what the dispatcher puts
/// in the worker's outbox (assignments, cancellations) goes down the stream.
///
/// With a gate (`--auth`), the token a worker connected with is checked again every
/// `recheckInterval` while its stream is open: once it is revoked or expires, the stream ends
/// with UNAUTHENTICATED and the worker's attempts run elsewhere.
public struct WorkersService: RPCService {
    let dispatcher: Dispatcher
    let gate: TokenGate?
    let recheckInterval: Duration

    public init(dispatcher: Dispatcher, gate: TokenGate? = nil, recheckInterval: Duration = .seconds(1)) {
        self.dispatcher = dispatcher
        self.gate = gate
        self.recheckInterval = recheckInterval
    }

    public func register(into router: inout RPCRouter) {
        router.registerBidirectionalStreaming("/tasker.v1.Workers/Connect") {
            (requests: MessageStream<Tasker_V1_WorkerMessage>, writer: ResponseWriter<Tasker_V1_ServerMessage>, context) in
            try await serve(requests, writer, context)
        }
    }

    func serve(
        _ requests: MessageStream<Tasker_V1_WorkerMessage>, _ writer: ResponseWriter<Tasker_V1_ServerMessage>, _ context: ServerContext
    ) async throws {
        var first = requests.makeAsyncIterator()
        guard let opening = try await first.next() else { return }
        guard case .register(let registration) = opening.kind else {
            throw RPCError(.failedPrecondition, "the first message on Workers/Connect must be RegisterWorker, naming the worker's handlers and slots")
        }
        let (outbound, outbox) = AsyncStream.makeStream(of: WorkerOutbound.self)
        let workerID = try await TaskerService.mapped { try await dispatcher.connect(registration, outbox: outbox) }
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await item in outbound {
                        if case .end(let reason) = item { throw RPCError(.unavailable, reason) }
                        try await writer.write(Self.message(item))
                    }
                }
                group.addTask {
                    for try await message in requests {
                        switch message.kind {
                        case .result(let result): await dispatcher.received(result, from: workerID)
                        case .heartbeat(let heartbeat): await dispatcher.heartbeat(heartbeat, from: workerID)
                        case .register: throw RPCError(.failedPrecondition, "this stream's worker is registered already; RegisterWorker comes once")
                        case nil: await dispatcher.heartbeat(Tasker_V1_Heartbeat(), from: workerID)
                        }
                    }
                }
                if let gate {
                    group.addTask { try await Self.recheck(context.metadata, with: gate, every: recheckInterval) }
                }
                // Whichever side ends first ends the call: the worker closed its side, the
                // dispatcher ended it, or either failed.
                try await group.next()
                group.cancelAll()
            }
        } catch {
            await dispatcher.disconnected(workerID, lost: error is CancellationError ? "its stream was reset" : "\(error)")
            throw error
        }
        await dispatcher.disconnected(workerID)
    }
}

extension WorkersService {
    /// Returns never; throws UNAUTHENTICATED once the token is no longer in force. A check that
    /// cannot be made (the database is down) keeps the worker: it is tried again next time.
    static func recheck(_ metadata: Metadata, with gate: TokenGate, every interval: Duration) async throws {
        while true {
            try await Task.sleep(for: interval)
            do {
                _ = try await gate.authenticate(metadata)
            } catch let error as RPCError where error.code == .unauthenticated {
                throw RPCError(.unauthenticated, "\(error.message); this worker's stream is ended and its steps run elsewhere")
            } catch is RPCError {
                continue
            }
        }
    }
}

extension WorkersService {
    /// What dispatch sends a worker, as the wire carries it.
    static func message(_ item: WorkerOutbound) -> Tasker_V1_ServerMessage {
        var message = Tasker_V1_ServerMessage()
        switch item {
        case .registered(let workerID, let heartbeatInterval):
            message.registered.workerID = workerID
            message.registered.heartbeatIntervalMs = Int32(heartbeatInterval * 1000)
        case .assignment(let started, let deadline):
            message.assignment.taskID = started.taskID
            message.assignment.taskName = started.taskName
            message.assignment.stepID = started.stepID
            message.assignment.stepName = started.stepName
            message.assignment.handler = started.handler
            message.assignment.attempt = started.attempt
            message.assignment.context = started.context
            message.assignment.dependencyResults = started.dependencyResults
            if let deadline {
                message.assignment.deadline = Google_Protobuf_Timestamp(roundingTimeIntervalSince1970: deadline, rule: .toNearestOrAwayFromZero)
            }
        case .cancel(let stepID, let attempt, let reason):
            message.cancel.stepID = stepID
            message.cancel.attempt = attempt
            message.cancel.reason = reason
        case .end:
            break
        }
        return message
    }
}
