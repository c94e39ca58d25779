import Foundation
import NIOConcurrencyHelpers
import SwiftProtobuf
import TaskerEngine
import TaskerProto
import TaskerQueue
import TaskerRPC
import TaskerServer
import TaskerWorker
import Testing

/// What one StreamStepUpdates call delivered, and how it ended.
struct Watched {
    var updates: [Tasker_V1_StepUpdate] = []
    var error: RPCError?
    var sequences: [UInt64] { updates.map(\.sequence) }
}

extension DispatchHarness {
    /// Opens StreamStepUpdates on node `node`; `read` is called once the call is open and
    /// gives the call to the caller to read (or not yet).
    func openWatch(
        _ taskID: String, after: UInt64 = 0, on node: Int = 0, configuration: RPCClient.Configuration = .init()
    ) async throws -> (RPCClient, ClientCall<Tasker_V1_StreamStepUpdatesRequest, Tasker_V1_StepUpdate>) {
        let client = RPCClient(host: "127.0.0.1", port: nodes[node].server.port, configuration: configuration)
        let call = try await client.serverStreaming(
            "/tasker.v1.Tasker/StreamStepUpdates",
            Tasker_V1_StreamStepUpdatesRequest.with {
                $0.taskID = taskID
                $0.afterSequence = after
            }, as: Tasker_V1_StepUpdate.self)
        return (client, call)
    }

    /// Watches a task until its stream ends.
    func watch(_ taskID: String, after: UInt64 = 0, on node: Int = 0, limit: Int = .max) async throws -> Watched {
        let (client, call) = try await openWatch(taskID, after: after, on: node)
        let watched = try await Self.read(call, limit: limit)
        await client.close()
        return watched
    }

    static func read(_ call: ClientCall<Tasker_V1_StreamStepUpdatesRequest, Tasker_V1_StepUpdate>, limit: Int = .max) async throws -> Watched {
        var watched = Watched()
        do {
            for try await update in call.responses {
                watched.updates.append(update)
                if watched.updates.count >= limit {
                    call.cancel()
                    break
                }
            }
        } catch let error as RPCError {
            watched.error = error
        }
        return watched
    }

    func lastSequence(_ taskID: String) async throws -> UInt64 {
        try await nodes[0].engine.progress(of: taskID).lastSequence
    }
}

func oneToN(_ n: UInt64) -> [UInt64] { Array(1...n) }

@Suite(.timeLimit(.minutes(3))) struct StepUpdateStreamTests {
    @Test func watchersOnTwoNodesSeeEachTasksUpdatesOnceInOrderFromReplayAndLive() async throws {
        let harness = try await DispatchHarness(nodes: 2)
        try await harness.register(diamond)
        try await harness.worker(on: 0) { worker in
            for handler in ["a", "b", "c", "d"] {
                worker.handle(handler) { step in
                    if step.stepName == "a" { try await Task.sleep(for: .milliseconds(300)) }
                    if step.stepName == "c", step.attempt == 1 { throw StepFailure.retryable("first try fails", backoffSeconds: 0) }
                    return results(#"{"step": "\#(step.stepName)"}"#)
                }
            }
        }
        var submitted: [String] = []
        for index in 0..<6 { submitted.append(try await harness.submit("diamond", on: index % 2).taskID) }
        let tasks = submitted
        // Each task watched on both nodes: one watcher from the start, one while it runs
        // (part replay, part live), and one after it has finished (replay only).
        let early = tasks.map { id in (0..<2).map { node in Task { try await harness.watch(id, on: node) } } }
        try await Task.sleep(for: .milliseconds(150))
        let during = tasks.map { id in (0..<2).map { node in Task { try await harness.watch(id, on: node) } } }
        for id in tasks { #expect(try await harness.finished(id).status == .complete) }
        let after = tasks.map { id in (0..<2).map { node in Task { try await harness.watch(id, on: 1 - node) } } }
        for (index, id) in tasks.enumerated() {
            let last = try await harness.lastSequence(id)
            for watcher in early[index] + during[index] + after[index] {
                let watched = try await watcher.value
                #expect(watched.error == nil, "ended OK: \(String(describing: watched.error))")
                #expect(watched.sequences == oneToN(last), "every update once, in order")
                #expect(watched.updates.allSatisfy { $0.taskID == id })
                #expect(watched.updates.last?.taskStatus == .complete)
            }
            let watched = try await early[index][1].value
            let c = watched.updates.filter { $0.stepName == "c" }
            #expect(c.contains { $0.status == .waitingForRetry && $0.error.message == "first try fails" && $0.attempt == 1 })
            #expect(c.last.map { $0.status == .complete && $0.results.fields["step"]?.stringValue == "c" && $0.attempt == 2 } == true)
        }
        for node in harness.nodes { try await eventually("no watcher left on the node") { node.hub.watcherCount == 0 } }
        await harness.stop()
    }

    @Test func aWatcherResumesAfterTheSequenceItGives() async throws {
        let harness = try await DispatchHarness()
        try await harness.register(diamond)
        try await harness.worker { worker in
            for handler in ["a", "b", "c", "d"] { worker.handle(handler) { _ in StepOutput() } }
        }
        let id = try await harness.submit("diamond").taskID
        #expect(try await harness.finished(id).status == .complete)
        let last = try await harness.lastSequence(id)
        let first = try await harness.watch(id, limit: 5)
        #expect(first.sequences == [1, 2, 3, 4, 5])
        let rest = try await harness.watch(id, after: 5)
        #expect(rest.error == nil && rest.sequences == Array(6...last))
        let nothing = try await harness.watch(id, after: last)
        #expect(nothing.error == nil && nothing.updates.isEmpty, "a finished task's stream ends at once")
        await harness.stop()
    }

    @Test func badRequestsGetAStatusThatSaysWhy() async throws {
        let harness = try await DispatchHarness()
        try await harness.register(diamond)
        let unknown = try await harness.watch(UUID().uuidString)
        #expect(unknown.error?.code == .notFound)
        let malformed = try await harness.watch("order-17")
        #expect(malformed.error?.code == .invalidArgument && malformed.error?.message.contains("order-17") == true)
        let id = try await harness.submit("diamond").taskID
        let past = try await harness.watch(id, after: 99)
        #expect(past.error?.code == .outOfRange && past.error?.message.contains("99") == true)
        await harness.stop()
    }

    @Test func aSlowWatcherIsCutOffAndResumesWithoutAGap() async throws {
        // Results big enough (40 × 32 KB, within a task's 1.5 MiB) that the updates fill the client's buffer, the stream's
        // flow-control window (64 KiB here) and the server's send buffer while the watcher
        // reads nothing, and a hub buffer of only 8 updates behind those. A short quiet
        // interval ticks the stream between the updates while it is stalled: a tick must not
        // serve a watcher that was cut off from the store instead.
        let harness = try await DispatchHarness {
            $0.watcherBuffer = 8
            $0.watcherQuietInterval = .milliseconds(20)
        }
        let wide = template("wide", (0..<40).map { step("s\($0)") })
        try await harness.register(wide)
        let watching = NIOLockedValueBox(false)
        // One step at a time, slowly enough that ticks fall between the updates, as they do on
        // a loaded machine.
        try await harness.worker(slots: 1) { worker in
            for index in 0..<40 {
                worker.handle("s\(index)") { _ in
                    while !watching.withLockedValue({ $0 }) { try await Task.sleep(for: .milliseconds(10)) }
                    try await Task.sleep(for: .milliseconds(60))
                    return results(#"{"blob": "\#(String(repeating: "x", count: 32_000))"}"#)
                }
            }
        }
        let id = try await harness.submit("wide").taskID
        // Every update up to here is history, replayed; none waits in the hub's 8 before the
        // test sees the watcher subscribed.
        try await eventually("the worker holds a step") {
            try await harness.task(id).steps.filter { $0.status == .inProgress }.count == 1
        }
        var small = RPCClient.Configuration()
        small.streamReceiveBufferSize = 16 << 10
        small.streamWindowSize = 64 << 10
        let (client, call) = try await harness.openWatch(id, configuration: small)
        try await eventually("the watcher subscribed") { harness.nodes[0].hub.watcherCount == 1 }
        watching.withLockedValue { $0 = true }
        #expect(try await harness.finished(id).status == .complete)
        try await Task.sleep(for: .milliseconds(300))
        let last = try await harness.lastSequence(id)
        let first = try await DispatchHarness.read(call)
        await client.close()
        let error = try #require(first.error, "cut off, not served \(first.updates.count) of \(last) updates")
        #expect(error.code == .resourceExhausted)
        let resumeAt = try #require(first.sequences.last)
        #expect(error.message.contains("after_sequence = \(resumeAt)"), "\(error.message)")
        #expect(first.sequences == oneToN(resumeAt))
        // What reached the watcher is bounded by the buffers: 16 KiB + 64 KiB on the client,
        // 256 KiB waiting to be sent and 8 in the hub, about 19 of the 40 large updates.
        let large = first.updates.filter { $0.results.fields["blob"] != nil }.count
        #expect(large <= 20, "\(large) updates of 32 KB reached a watcher that read nothing")
        let rest = try await harness.watch(id, after: resumeAt)
        #expect(rest.error == nil)
        #expect(first.sequences + rest.sequences == oneToN(last))
        try await eventually("no watcher left") { harness.nodes[0].hub.watcherCount == 0 }
        await harness.stop()
    }

    @Test func twoHundredWatchersOnOneServer() async throws {
        let harness = try await DispatchHarness(nodes: 2)
        try await harness.register(diamond)
        try await harness.worker(on: 1, slots: 16) { worker in
            for handler in ["a", "b", "c", "d"] {
                worker.handle(handler) { step in
                    if step.stepName == "a" { try await Task.sleep(for: .milliseconds(200)) }
                    return StepOutput()
                }
            }
        }
        let (everyClient, everyCall) = try await harness.openWatch("")
        try await eventually("the watcher of every task subscribed") { harness.nodes[0].hub.watcherCount == 1 }
        var submitted: [String] = []
        for _ in 0..<20 { submitted.append(try await harness.submit("diamond").taskID) }
        let tasks = submitted
        let everyTask = Task { () -> Watched in
            let (client, call) = (everyClient, everyCall)
            var watched = Watched()
            var open = Set(tasks)
            // Bounded, so that a lost final update fails the test rather than hanging it.
            let deadline = Task {
                try await Task.sleep(for: .seconds(60))
                call.cancel()
            }
            for try await update in call.responses {
                watched.updates.append(update)
                if TaskStatusRule.isFinished(update.taskStatus) { open.remove(update.taskID) }
                if open.isEmpty { break }
            }
            deadline.cancel()
            #expect(open.isEmpty, "every task's final update reached the watcher of every task")
            call.cancel()
            await client.close()
            return watched
        }
        let watchers = (0..<199).map { index in Task { try await harness.watch(tasks[index % tasks.count]) } }
        for (index, watcher) in watchers.enumerated() {
            let watched = try await watcher.value
            let id = tasks[index % tasks.count]
            #expect(watched.error == nil)
            #expect(watched.sequences == oneToN(try await harness.lastSequence(id)), "watcher \(index)")
        }
        // Every task's updates reach the watcher of every task in order, once each, from the
        // first: it subscribed before any task was submitted.
        let all = try await everyTask.value
        for id in tasks {
            let sequences = all.updates.filter { $0.taskID == id }.map(\.sequence)
            #expect(sequences == oneToN(try await harness.lastSequence(id)), "task \(id): 1…N in order with no gap")
        }
        try await eventually("no watcher left") { harness.nodes[0].hub.watcherCount == 0 }
        await harness.stop()
    }

    @Test func updatesAreRelayedOnlyWhileAnotherNodeHasWatchers() async throws {
        let harness = try await DispatchHarness(nodes: 2)
        try await harness.register(diamond)
        try await harness.worker(on: 0) { worker in
            for handler in ["a", "b", "c", "d"] { worker.handle(handler) { _ in StepOutput() } }
        }
        let lane = RedisLane(url: try RedisURL(parsing: harness.redis.url))
        func publishes() async throws -> Int {
            let stats = try await lane.command(["INFO", "commandstats"]).string ?? ""
            guard let line = stats.split(separator: "\r\n").first(where: { $0.hasPrefix("cmdstat_publish:") }),
                  let calls = line.split(separator: ",").first?.split(separator: "=").last
            else { return 0 }
            return Int(calls) ?? 0
        }
        let quiet = try await harness.submit("diamond").taskID
        #expect(try await harness.finished(quiet).status == .complete)
        #expect(try await publishes() == 0, "nobody watches: nothing is made or sent")

        let (client, call) = try await harness.openWatch("", on: 1)
        try await eventually("node 1 said it has a watcher") { (try await lane.command(["ZCARD", "tasker:watching"]).integer ?? 0) > 0 }
        try await eventually("node 0 learned that node 1 watches") { harness.nodes[0].relaysUpdates }
        let watched = try await harness.submit("diamond").taskID
        #expect(try await harness.finished(watched).status == .complete)
        try await eventually("node 0's updates reached node 1") { try await publishes() > 0 }
        var seen: [Tasker_V1_StepUpdate] = []
        for try await update in call.responses {
            seen.append(update)
            if update.taskID == watched, update.taskStatus == .complete { break }
        }
        #expect(seen.filter { $0.taskID == watched }.map(\.sequence) == oneToN(try await harness.lastSequence(watched)))
        call.cancel()
        await client.close()
        await lane.shutdown()
        await harness.stop()
    }
}
