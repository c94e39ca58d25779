import Foundation
import NIOConcurrencyHelpers
import SwiftProtobuf
import TaskerDev
import TaskerDispatch
import TaskerEngine
import TaskerProto
import TaskerRPC
import TaskerWorker
import Testing

/// A worker driven message by message, to send what the SDK never would.
struct RawWorker {
    let client: RPCClient
    let call: ClientCall<Tasker_V1_WorkerMessage, Tasker_V1_ServerMessage>
    var responses: MessageStream<Tasker_V1_ServerMessage>.AsyncIterator

    init(port: Int) async throws {
        client = RPCClient(host: "127.0.0.1", port: port)
        call = try await client.streaming("/tasker.v1.Workers/Connect")
        responses = call.responses.makeAsyncIterator()
    }

    mutating func register(_ handlers: [String], slots: Int32 = 1) async throws -> Tasker_V1_WorkerRegistered {
        try await call.send(.with { $0.register = .with { $0.name = "raw"; $0.handlers = handlers; $0.slots = slots } })
        guard case .registered(let registered) = try await responses.next()?.kind else { throw RPCError(.internal, "no WorkerRegistered") }
        return registered
    }

    mutating func assignment() async throws -> Tasker_V1_StepAssignment {
        while let message = try await responses.next() {
            if case .assignment(let assignment) = message.kind { return assignment }
        }
        throw RPCError(.internal, "the stream ended without an assignment")
    }

    func send(_ message: Tasker_V1_WorkerMessage) async throws { try await call.send(message) }

    func succeed(_ stepID: String, attempt: Int32, results: Google_Protobuf_Struct = .init()) async throws {
        try await send(.with { $0.result = .with { $0.stepID = stepID; $0.attempt = attempt; $0.success.results = results } })
    }

    /// The status the call ended with.
    mutating func ending() async -> RPCError? {
        do {
            while try await responses.next() != nil {}
            return nil
        } catch let error as RPCError {
            return error
        } catch {
            return RPCError(.unknown, "\(error)")
        }
    }

    func close() async { await client.close() }
}

@Suite(.timeLimit(.minutes(3))) struct WorkerFailureTests {
    @Test func badRegistrationsAreRefusedWithTheirStatus() async throws {
        let harness = try await DispatchHarness(dispatch: DispatchHarness.patient)
        var notFirst = try await RawWorker(port: harness.nodes[0].server.port)
        try await notFirst.send(.with { $0.heartbeat = .init() })
        let refused = await notFirst.ending()
        #expect(refused?.code == .failedPrecondition && refused?.message.contains("RegisterWorker") == true)

        var noHandlers = try await RawWorker(port: harness.nodes[0].server.port)
        try await noHandlers.send(.with { $0.register = .with { $0.name = "empty" } })
        #expect(await noHandlers.ending()?.code == .invalidArgument)

        var badTemplate = try await RawWorker(port: harness.nodes[0].server.port)
        try await badTemplate.send(.with {
            $0.register = .with { $0.handlers = ["x"]; $0.templates = [template("loop", [step("x", dependsOn: ["y"]), step("y", dependsOn: ["x"])])] }
        })
        let cycle = await badTemplate.ending()
        #expect(cycle?.code == .invalidArgument && cycle?.message.contains("cycle") == true)

        var twice = try await RawWorker(port: harness.nodes[0].server.port)
        _ = try await twice.register(["x"])
        try await twice.send(.with { $0.register = .with { $0.handlers = ["x"] } })
        #expect(await twice.ending()?.code == .failedPrecondition)
        for worker in [notFirst, noHandlers, badTemplate, twice] { await worker.close() }
        #expect(await harness.nodes[0].dispatcher?.connectedWorkers == 0)
        await harness.stop()
    }

    @Test func staleDuplicateAndGarbageResultsChangeNothingAndTheStreamSurvives() async throws {
        let harness = try await DispatchHarness(dispatch: DispatchHarness.patient)
        try await harness.register(template("pair", [step("first"), step("second", dependsOn: ["first"])]))
        var worker = try await RawWorker(port: harness.nodes[0].server.port)
        _ = try await worker.register(["first", "second"])
        let task = try await harness.submit("pair")
        let first = try await worker.assignment()
        #expect(first.stepName == "first" && first.attempt == 1)
        try await worker.succeed(UUID().uuidString, attempt: 1)
        try await worker.succeed("not-a-uuid", attempt: 1)
        try await worker.succeed(first.stepID, attempt: 7)
        try await worker.succeed(first.stepID, attempt: 1, results: try Google_Protobuf_Struct(jsonString: #"{"n": 1}"#))
        try await worker.succeed(first.stepID, attempt: 1, results: try Google_Protobuf_Struct(jsonString: #"{"n": 2}"#))
        let second = try await worker.assignment()
        #expect(second.stepName == "second")
        #expect(second.dependencyResults["first"]?.fields["n"]?.numberValue == 1, "the duplicate did not overwrite")
        // An annotation without a type cannot be stored: the attempt fails, retryably.
        try await worker.send(.with {
            $0.result = .with { $0.stepID = second.stepID; $0.attempt = 1; $0.success.annotations = [Tasker_V1_Annotation()] }
        })
        let retried = try await worker.assignment()
        #expect(retried.stepID == second.stepID && retried.attempt == 2)
        try await worker.succeed(retried.stepID, attempt: 2)
        let done = try await harness.finished(task.taskID)
        #expect(done.status == .complete)
        #expect(done.steps.first { $0.name == "second" }?.lastError.message.contains("annotation") == true)
        #expect(await harness.nodes[0].dispatcher?.fencedResults == 4)
        await worker.close()
        await harness.stop()
    }

    @Test func aWorkerThatVanishesMidStepHasItsStepRunElsewhere() async throws {
        let harness = try await DispatchHarness()
        try await harness.register(template("once", [step("work", backoff: 0.1)]))
        var doomed = try await RawWorker(port: harness.nodes[0].server.port)
        _ = try await doomed.register(["work"])
        let task = try await harness.submit("once")
        let taken = try await doomed.assignment()
        #expect(taken.attempt == 1)
        let ranBy = NIOLockedValueBox<[Int32]>([])
        try await harness.worker(name: "survivor") { worker in
            worker.handle("work") { step in
                ranBy.withLockedValue { $0.append(step.attempt) }
                return StepOutput()
            }
        }
        doomed.call.cancel()
        let done = try await harness.finished(task.taskID)
        #expect(done.status == .complete && ranBy.withLockedValue { $0 } == [2])
        #expect(done.steps[0].lastError.message.contains("went away"))
        let history = try await harness.history(task.taskID)
        #expect(history.filter { $0.status == .complete }.count == 1)
        await doomed.close()
        await harness.stop()
    }

    @Test func attemptsOfALostNodeOrLostOnTheWayAreRunAgain() async throws {
        let harness = try await DispatchHarness()
        try await harness.register(template("once", [step("work", backoff: 0.1)]))
        let node = harness.nodes[0]
        let orphan = try await harness.submit("once")
        let ofAGoneNode = try await harness.submit("once")
        // Started as if by this node and by a node that no longer exists, with no worker told.
        #expect(try await node.engine.startStep(orphan.steps[0].stepID, node: node.dispatcher!.nodeID)?.attempt == 1)
        #expect(try await node.engine.startStep(ofAGoneNode.steps[0].stepID, node: UUID().uuidString)?.attempt == 1)
        try await harness.worker { $0.handle("work") { _ in StepOutput() } }
        let first = try await harness.finished(orphan.taskID)
        #expect(first.status == .complete && first.steps[0].attempts == 2)
        #expect(first.steps[0].lastError.message.contains("lost on its way"))
        let second = try await harness.finished(ofAGoneNode.taskID)
        #expect(second.status == .complete && second.steps[0].attempts == 2)
        #expect(second.steps[0].lastError.message.contains("node running this step stopped"))
        await harness.stop()
    }

    @Test func aSilentWorkerIsCutOffAfterThreeHeartbeatIntervals() async throws {
        let harness = try await DispatchHarness()
        try await harness.register(template("once", [step("work", backoff: 0.1)]))
        var silent = try await RawWorker(port: harness.nodes[0].server.port)
        let registered = try await silent.register(["work"])
        // Its last message is the registration: silence counts from here.
        let silentSince = Date()
        #expect(registered.heartbeatIntervalMs == 500)
        let task = try await harness.submit("once")
        // On a loaded machine the silence can run out before the assignment reaches it: the
        // cut-off is what is tested, and the step runs elsewhere either way.
        var assigned: Date?
        let ending: RPCError?
        do {
            _ = try await silent.assignment()
            assigned = Date()
            ending = await silent.ending()
        } catch let error as RPCError {
            ending = error
        }
        #expect(ending?.code == .unavailable && ending?.message.contains("heartbeat") == true)
        // 3 intervals of 0.5 s, checked every quarter second: never before 1.5 s of silence
        // (less the registration's answer on its way), and not long after.
        let silence = Date().timeIntervalSince(silentSince)
        #expect(silence >= 1.0, "cut off after \(silence) s of silence")
        if let assigned {
            #expect(Date().timeIntervalSince(assigned) < 3, "cut off \(Date().timeIntervalSince(assigned)) s after its assignment")
        }
        try await harness.worker(name: "alive") { $0.handle("work") { _ in StepOutput() } }
        #expect(try await harness.finished(task.taskID).status == .complete)
        await silent.close()
        await harness.stop()
    }

    /// With the default timings (1 s heartbeats, 3 missed) a frozen worker, its connection
    /// open and silent, is dropped after 3 s and before 4, and its step has run elsewhere
    /// within 5 s of the freeze.
    @Test func aFrozenWorkersStepRunsElsewhereWithinFiveSecondsByDefault() async throws {
        var timings = DispatchHarness.fast
        let defaults = DispatchConfiguration()
        timings.heartbeatInterval = defaults.heartbeatInterval
        timings.missedHeartbeats = defaults.missedHeartbeats
        let harness = try await DispatchHarness(dispatch: timings)
        try await harness.register(template("once", [step("work", backoff: 0.1)]))
        var frozen = try await RawWorker(port: harness.nodes[0].server.port)
        _ = try await frozen.register(["work"])
        let silentSince = Date()
        let task = try await harness.submit("once")
        _ = try await frozen.assignment()
        try await harness.worker(name: "alive") { $0.handle("work") { _ in StepOutput() } }
        let ending = await frozen.ending()
        let droppedAfter = Date().timeIntervalSince(silentSince)
        #expect(ending?.code == .unavailable && ending?.message.contains("heartbeat") == true)
        // 3 s from its last message as the server saw it, which was a little before silentSince.
        #expect(droppedAfter >= 2.5 && droppedAfter < 4, "dropped after \(droppedAfter) s")
        let done = try await harness.finished(task.taskID, within: 10)
        #expect(done.status == .complete && done.steps[0].attempts == 2)
        #expect(Date().timeIntervalSince(silentSince) < 5)
        await frozen.close()
        await harness.stop()
    }

    /// Node B reads a step for its only worker just as that worker starts draining: the step
    /// goes back to the queue at once and runs on node A's idle worker within a second on a
    /// quiet machine, within three on a loaded suite (the sweeper, with the default grace of
    /// 10 s, would take far longer).
    @Test func aStepReadForAWorkerThatStartsDrainingRunsElsewhereWithinASecond() async throws {
        var timings = DispatchHarness.patient
        timings.queueGrace = DispatchConfiguration().queueGrace
        let harness = try await DispatchHarness(nodes: 2, dispatch: timings)
        try await harness.register(template("once", [step("work")]))
        var draining = try await RawWorker(port: harness.nodes[1].server.port)
        _ = try await draining.register(["work"])
        // Node B (and only it: node A has no worker) waits in a read of the stream.
        // It beats while the test waits: on a loaded machine that can take longer than the 3 s
        // a silent worker is allowed.
        let beating = draining.call
        let beats = Task {
            while !Task.isCancelled {
                try await beating.send(.with { $0.heartbeat = .init() })
                try await Task.sleep(for: .milliseconds(250))
            }
        }
        try await eventually("node B blocked in a queue read") { try await blocking { try harness.redis.blockedStreamReads() } == 1 }
        beats.cancel()
        _ = await beats.result
        try await draining.send(.with { $0.heartbeat.draining = true })
        let task = try await harness.submit("once")
        try await harness.worker(on: 0, name: "idle") { $0.handle("work") { _ in StepOutput() } }
        let connected = Date()
        let done = try await harness.finished(task.taskID, within: 15)
        let took = Date().timeIntervalSince(connected)
        #expect(done.status == .complete && done.steps[0].attempts == 1)
        #expect(took < 3, "ran \(took) s after node A's worker connected")
        await draining.close()
        await harness.stop()
    }

    @Test func everyTaskCompletesThroughARedisFlushAndARestart() async throws {
        let harness = try await DispatchHarness()
        try await harness.register(diamond)
        try await harness.worker(slots: 8) { worker in
            for handler in ["a", "b", "c", "d"] {
                worker.handle(handler) { _ in
                    try await Task.sleep(for: .milliseconds(20))
                    return StepOutput()
                }
            }
        }
        var ids: [String] = []
        for _ in 0..<15 { ids.append(try await harness.submit("diamond").taskID) }
        let lane = harness.redis
        try await Task.sleep(for: .milliseconds(100))
        let flush = Process()
        flush.executableURL = URL(fileURLWithPath: "/usr/bin/redis-cli")
        flush.arguments = ["-p", String(lane.port), "FLUSHALL"]
        flush.standardOutput = FileHandle.nullDevice
        try flush.run()
        flush.waitUntilExit()
        for _ in 0..<15 { ids.append(try await harness.submit("diamond").taskID) }
        try await blocking { lane.stop() }
        for _ in 0..<5 { ids.append(try await harness.submit("diamond").taskID) }
        try await Task.sleep(for: .milliseconds(300))
        try await blocking { try lane.start() }
        for id in ids {
            let task = try await harness.finished(id, within: 60)
            #expect(task.status == .complete)
            let history = try await harness.history(id)
            #expect(history.filter { $0.status == .complete }.count == 4, "one COMPLETE per step")
        }
        await harness.stop()
    }
}
