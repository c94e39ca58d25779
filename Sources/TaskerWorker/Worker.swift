import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle
import SwiftProtobuf
import TaskerProto
import TaskerRPC
import TaskerTLS

/// A worker process's connection to Tasker: it registers its handlers (and any templates),
/// runs the steps it is sent, up to its slots at once, reports each outcome, sends heartbeats,
/// reconnects with backoff when the connection drops, and drains on `stop`.
///
///     let worker = Worker(host: "127.0.0.1", port: 7420, configuration: .init(name: "orders", slots: 16))
///     worker.handle("charge_card") { step in
///         try await payments.charge(step.context)
///         return StepOutput(results: ["charged": true])
///     }
///     try await ServiceGroup(services: [worker], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger).run()
public final class Worker: Service, Sendable {
    public struct Configuration: Sendable {
        public var name: String
        /// Steps run at once; the server never sends more.
        public var slots: Int
        /// Registered by the worker when it connects (the same content again is fine).
        public var templates: [Tasker_V1_TaskTemplate]
        /// First and largest wait before reconnecting; it doubles in between, with jitter.
        public var reconnectBackoff: (first: Double, largest: Double)
        /// How long `stop` waits for running steps before it gives them up.
        public var drainTimeout: Double
        /// TLS to the server; nil speaks plaintext.
        public var tls: ClientTLS?
        /// An API token of the worker role, for a server that runs with `--auth`.
        public var token: String?

        public init(name: String = ProcessInfo.processInfo.hostName, slots: Int = 8, templates: [Tasker_V1_TaskTemplate] = [],
                    reconnectBackoff: (first: Double, largest: Double) = (0.1, 10), drainTimeout: Double = 30) {
            self.name = name
            self.slots = max(slots, 1)
            self.templates = templates
            self.reconnectBackoff = reconnectBackoff
            self.drainTimeout = drainTimeout
        }
    }

    public typealias Handler = @Sendable (StepContext) async throws -> StepOutput

    public let host: String
    public let port: Int
    public let configuration: Configuration
    private let logger: Logger

    private struct State {
        var handlers: [String: Handler] = [:]
        var running: [String: (attempt: Int32, task: Task<Void, Never>)] = [:]
        var call: ClientCall<Tasker_V1_WorkerMessage, Tasker_V1_ServerMessage>?
        var stopping = false
        var draining = false
        var connected = false
        var registrations = 0
        var stepsRun = 0
        /// `wait(atMost:until:)`'s callers, each woken once its condition holds or its time is up.
        var waiters: [UInt64: (ready: @Sendable (State) -> Bool, continuation: CheckedContinuation<Void, Never>)] = [:]
        var nextWaiter: UInt64 = 0

        /// The waiters whose condition now holds, taken out to be woken.
        mutating func readyWaiters() -> [CheckedContinuation<Void, Never>] {
            let ready = waiters.filter { $0.value.ready(self) }
            for id in ready.keys { waiters[id] = nil }
            return ready.values.map(\.continuation)
        }
    }

    private let state = NIOLockedValueBox(State())

    public init(host: String, port: Int, configuration: Configuration = .init(), logger: Logger = Logger(label: "tasker.worker")) {
        self.host = host
        self.port = port
        self.configuration = configuration
        self.logger = logger
    }

    /// Runs steps of handler `name` with `body`.
    public func handle(_ name: String, _ body: @escaping Handler) {
        state.withLockedValue { $0.handlers[name] = body }
    }

    public func handle(_ handler: some StepHandler) {
        handle(handler.name) { step in try await handler.run(step) }
    }

    /// Steps started so far (results sent or not).
    public var stepsRun: Int { state.withLockedValue { $0.stepsRun } }
    public var isConnected: Bool { state.withLockedValue { $0.connected } }
    /// How many times the worker has registered: more than once means it lost its connection
    /// (or was dropped by the server) and came back.
    public var registrations: Int { state.withLockedValue { $0.registrations } }
    public var runningSteps: Int { state.withLockedValue { $0.running.count } }

    /// Connects and runs steps until `stop` or graceful shutdown (which stops it); reconnects
    /// with backoff whenever the connection drops. Throws only what retrying cannot mend: a
    /// registration the server refuses, or a token it does not take (UNAUTHENTICATED,
    /// PERMISSION_DENIED: missing, revoked, expired, or not of the worker role).
    public func run() async throws {
        try await withGracefulShutdownHandler {
            try await connecting()
        } onGracefulShutdown: {
            Task { await self.stop() }
        }
    }

    private func connecting() async throws {
        var delay = configuration.reconnectBackoff.first
        while !state.withLockedValue({ $0.stopping }) {
            do {
                try await connection()
                delay = configuration.reconnectBackoff.first
            } catch let error as RPCError where [.invalidArgument, .alreadyExists, .failedPrecondition, .unauthenticated, .permissionDenied].contains(error.code) {
                throw error
            } catch {
                logger.info("connection to \(host):\(port) lost: \(error)")
            }
            // The wait before the next try ends early on `stop`, so that a worker whose server is
            // away stops at once.
            await wait(atMost: delay * Double.random(in: 0.8...1.2)) { $0.stopping }
            delay = min(delay * 2, configuration.reconnectBackoff.largest)
        }
    }

    /// Stops taking steps, lets the running ones finish (up to the drain timeout) and their
    /// results reach the server, then closes the connection; `run` returns.
    public func stop() async {
        let (call, woken) = state.withLockedValue { state in
            state.stopping = true
            state.draining = true
            return (state.call, state.readyWaiters())
        }
        for waiter in woken { waiter.resume() }
        if let call {
            var heartbeat = Tasker_V1_WorkerMessage()
            heartbeat.heartbeat.draining = true
            try? await call.send(heartbeat)
        }
        await wait(atMost: configuration.drainTimeout) { $0.running.isEmpty }
        let left = changingRunning { state in
            defer { state.running.removeAll() }
            return state.running.values.map(\.task)
        }
        for task in left { task.cancel() }
        // Half-closed, the server reads every result sent before it ends the call; cancelled
        // at once, results still on their way could be dropped with the stream.
        call?.finishSending()
        await wait(atMost: 5) { !$0.connected }
        call?.cancel()
    }

    /// Returns once `ready` holds, woken by the change that makes it hold, or after `seconds`.
    private func wait(atMost seconds: Double, until ready: @escaping @Sendable (State) -> Bool) async {
        let state = self.state
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let id = state.withLockedValue { state -> UInt64? in
                guard !ready(state) else { return nil }
                state.nextWaiter += 1
                state.waiters[state.nextWaiter] = (ready, continuation)
                return state.nextWaiter
            }
            guard let id else { return continuation.resume() }
            Task {
                try? await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
                state.withLockedValue { $0.waiters.removeValue(forKey: id) }?.continuation.resume()
            }
        }
    }

    /// Changes the running steps and wakes whoever waits for that change.
    private func changingRunning<Result>(_ change: (inout State) -> Result) -> Result {
        let (result, woken) = state.withLockedValue { state in
            let result = change(&state)
            return (result, state.readyWaiters())
        }
        for waiter in woken { waiter.resume() }
        return result
    }

    // MARK: One connection

    private func connection() async throws {
        var rpc = RPCClient.Configuration()
        rpc.security = configuration.tls
        if let token = configuration.token { rpc.metadata.add("authorization", "Bearer \(token)") }
        let client = RPCClient(host: host, port: port, configuration: rpc)
        defer { Task { await client.close() } }
        let call = try await client.streaming(
            "/tasker.v1.Workers/Connect", request: Tasker_V1_WorkerMessage.self, response: Tasker_V1_ServerMessage.self)
        let handlers = state.withLockedValue { state -> [String] in
            state.call = call
            return state.handlers.keys.sorted()
        }
        var register = Tasker_V1_WorkerMessage()
        register.register.name = configuration.name
        register.register.handlers = handlers
        register.register.slots = Int32(configuration.slots)
        register.register.templates = configuration.templates
        do {
            try await call.send(register)
        } catch {
            // The server may end the call before it reads a message (a token it refuses):
            // then its status, not the failed send, says why.
            for try await _ in call.responses {}
            throw error
        }
        var heartbeats: Task<Void, Never>?
        defer {
            heartbeats?.cancel()
            // Steps running when the connection went are failed by the server as lost: stop them.
            let lost = changingRunning { state in
                state.connected = false
                state.call = nil
                defer { state.running.removeAll() }
                return state.running.values.map(\.task)
            }
            for task in lost { task.cancel() }
        }
        for try await message in call.responses {
            switch message.kind {
            case .registered(let registered):
                state.withLockedValue {
                    $0.connected = true
                    $0.registrations += 1
                }
                logger.info("registered with \(host):\(port) as \(registered.workerID)")
                let interval = max(Int(registered.heartbeatIntervalMs), 100)
                heartbeats = Task { [state] in
                    while !Task.isCancelled {
                        try? await Task.sleep(for: .milliseconds(interval))
                        if Task.isCancelled { return }
                        var heartbeat = Tasker_V1_WorkerMessage()
                        heartbeat.heartbeat.draining = state.withLockedValue { $0.draining }
                        try? await call.send(heartbeat)
                    }
                }
            case .assignment(let assignment):
                start(assignment, on: call)
            case .cancel(let cancel):
                let task = changingRunning { state -> Task<Void, Never>? in
                    guard let running = state.running[cancel.stepID], running.attempt == cancel.attempt else { return nil }
                    state.running[cancel.stepID] = nil
                    return running.task
                }
                task?.cancel()
            case nil:
                continue
            }
        }
    }

    private func start(_ assignment: Tasker_V1_StepAssignment, on call: ClientCall<Tasker_V1_WorkerMessage, Tasker_V1_ServerMessage>) {
        let step = StepContext(assignment)
        let state = self.state
        state.withLockedValue { current in
            let handler = current.handlers[assignment.handler]
            current.stepsRun += 1
            let task = Task {
                var result = Tasker_V1_WorkerMessage()
                result.result.stepID = step.stepID
                result.result.attempt = step.attempt
                do {
                    guard let handler else {
                        throw StepFailure.retryable("this worker has no handler named '\(step.handler)'")
                    }
                    let output = try await handler(step)
                    result.result.success.results = output.results
                    result.result.success.annotations = output.annotations
                } catch StepFailure.permanent(let message) {
                    result.result.failure.message = message
                    result.result.failure.retryable = false
                } catch StepFailure.retryable(let message, let backoff) {
                    result.result.failure.message = message
                    result.result.failure.retryable = true
                    result.result.failure.backoffRequestSeconds = backoff
                } catch {
                    result.result.failure.message = "\(error)"
                    result.result.failure.retryable = true
                }
                // A step called off (timed out, task cancelled) has no result to give.
                let current = state.withLockedValue { state -> Bool in
                    guard state.running[step.stepID]?.attempt == step.attempt else { return false }
                    return true
                }
                guard current, !Task.isCancelled else { return }
                try? await call.send(result)
                self.changingRunning { state in
                    if state.running[step.stepID]?.attempt == step.attempt { state.running[step.stepID] = nil }
                }
            }
            current.running[step.stepID] = (step.attempt, task)
        }
    }
}
