import TaskerDispatch
import TaskerEngine
import TaskerProto
import TaskerRPC

/// `tasker.v1.Workers/Connect` bound to the node's dispatcher: the first message registers the
/// worker, then its results and heartbeats go to the dispatcher while what the dispatcher puts
/// in the worker's outbox (assignments, cancellations) goes down the stream.
public struct WorkersService: RPCService {
    let dispatcher: Dispatcher

    public init(dispatcher: Dispatcher) {
        self.dispatcher = dispatcher
    }

    public func register(into router: inout RPCRouter) {
        router.registerBidirectionalStreaming("/tasker.v1.Workers/Connect") {
            (requests: MessageStream<Tasker_V1_WorkerMessage>, writer: ResponseWriter<Tasker_V1_ServerMessage>, _) in
            try await Self.serve(requests, writer, dispatcher)
        }
    }

    static func serve(
        _ requests: MessageStream<Tasker_V1_WorkerMessage>, _ writer: ResponseWriter<Tasker_V1_ServerMessage>, _ dispatcher: Dispatcher
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
                        switch item {
                        case .message(let message): try await writer.write(message)
                        case .end(let reason): throw RPCError(.unavailable, reason)
                        }
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
                // Whichever side ends first ends the call: the worker closed its side, the
                // dispatcher ended it, or either failed.
                try await group.next()
                group.cancelAll()
            }
        } catch {
            await dispatcher.disconnected(workerID)
            throw error
        }
        await dispatcher.disconnected(workerID)
    }
}
