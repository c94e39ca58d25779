import Foundation
import NIOConcurrencyHelpers
import NIOPosix
import TaskerDev
import Testing

@testable import TaskerQueue

@Suite(.timeLimit(.minutes(2))) struct StepQueueTests {
    @Test func stepsGoThroughTheirHandlersStreamsOnceEach() async throws {
        let redis = try await blocking { try PrivateRedis() }
        let url = try RedisURL(parsing: redis.url)
        let nodeA = StepQueue(url: url, consumer: "a", readBlockMilliseconds: 100)
        let nodeB = StepQueue(url: url, consumer: "b", readBlockMilliseconds: 100)
        try await nodeA.enqueue([("pay", "s1", 3), ("ship", "s2", 3), ("pay", "s3", 3)])
        let first = try await nodeA.read(["pay": 1])
        #expect(first.map(\.stepID) == ["s1"])
        let second = try await nodeB.read(["pay": 5, "ship": 5])
        #expect(Set(second.map(\.stepID)) == ["s2", "s3"], "each entry goes to one node")
        #expect(try await nodeA.read(["pay": 5, "ship": 5]).isEmpty)
        #expect(try await nodeA.state(of: "pay") == ReadyStreamState(exists: true, undelivered: 0,
                                                                    lastDeliveredMilliseconds: try #require(UInt64(second.first { $0.handler == "pay" }!.entryID.split(separator: "-")[0]))))
        try await nodeB.acknowledge(second)
        try await nodeA.acknowledge(first)
        let lane = RedisLane(url: url)
        #expect(try await lane.command(["XLEN", StepQueue.streamKey("pay")]) == .integer(0), "taken entries are removed")
        await lane.shutdown()
        await nodeA.shutdown()
        await nodeB.shutdown()
    }

    @Test func aFlushedRedisIsNoticedAndReadsCarryOn() async throws {
        let redis = try await blocking { try PrivateRedis() }
        let url = try RedisURL(parsing: redis.url)
        let queue = StepQueue(url: url, consumer: "a", readBlockMilliseconds: 100)
        try await queue.enqueue([("pay", "s1", 3)])
        #expect(try await queue.state(of: "pay").undelivered == 1)
        let lane = RedisLane(url: url)
        try await lane.command(["FLUSHALL"])
        #expect(try await queue.state(of: "pay").exists == false)
        #expect(try await queue.read(["pay": 1]).isEmpty, "a missing group is made again, not an error")
        try await queue.enqueue([("pay", "s2", 3)])
        #expect(try await queue.read(["pay": 1]).map(\.stepID) == ["s2"])
        await lane.shutdown()
        await queue.shutdown()
    }

    @Test func aHandlersStepsAreReadByPriorityThenByWhenTheyWereQueued() async throws {
        let redis = try await blocking { try PrivateRedis() }
        let url = try RedisURL(parsing: redis.url)
        let queue = StepQueue(url: url, consumer: "a", readBlockMilliseconds: 100)
        try await queue.enqueue([("pay", "low", 5), ("pay", "default", 3), ("pay", "first", 1), ("pay", "first-too", 1), ("ship", "other", 2)])
        let read = try await queue.read(["pay": 3, "ship": 1])
        #expect(read.filter { $0.handler == "pay" }.map(\.stepID) == ["first", "first-too", "default"])
        #expect(read.filter { $0.handler == "pay" }.map(\.priority) == [1, 1, 3])
        #expect(read.first { $0.handler == "ship" }?.stepID == "other")
        #expect(try await queue.read(["pay": 5]).map(\.stepID) == ["low"], "the rest is still there")
        #expect(try await queue.read(["pay": 5]).isEmpty)
        await queue.shutdown()
        _ = try? await blocking { redis.stop() }
    }

    @Test func aWaitingStepRanksOnePriorityHigherEachAgingInterval() async throws {
        let redis = try await blocking { try PrivateRedis() }
        let url = try RedisURL(parsing: redis.url)
        let queue = StepQueue(url: url, consumer: "a", readBlockMilliseconds: 100, agingInterval: .seconds(1))
        try await queue.enqueue([("pay", "patient", 5)])
        try await Task.sleep(for: .milliseconds(2100))
        // Two or three intervals waited: 5 ranks as 3 or 2, ahead of a 3 queued now (and older
        // than it), behind a 1.
        try await queue.enqueue([("pay", "now", 3), ("pay", "urgent", 1)])
        let read = try await queue.read(["pay": 3]).map(\.stepID)
        #expect(read == ["urgent", "patient", "now"])
        await queue.shutdown()
        _ = try? await blocking { redis.stop() }
    }

    @Test func abandonedDeliveriesAreDropped() async throws {
        let redis = try await blocking { try PrivateRedis() }
        let url = try RedisURL(parsing: redis.url)
        let queue = StepQueue(url: url, consumer: "a", readBlockMilliseconds: 100)
        try await queue.enqueue([("pay", "s1", 3), ("pay", "s2", 3)])
        _ = try await queue.read(["pay": 2])
        #expect(try await queue.dropAbandoned(of: "pay", idleMilliseconds: 60_000) == 0)
        try await Task.sleep(for: .milliseconds(50))
        #expect(try await queue.dropAbandoned(of: "pay", idleMilliseconds: 10) == 2)
        #expect(try await queue.dropAbandoned(of: "nothing", idleMilliseconds: 10) == 0)
        await queue.shutdown()
    }

    @Test func dueRetriesAreTakenOnceInDueOrder() async throws {
        let redis = try await blocking { try PrivateRedis() }
        let queue = StepQueue(url: try RedisURL(parsing: redis.url), consumer: "a")
        try await queue.scheduleRetries([("late", 2000), ("early", 1000), ("later", 3000)])
        #expect(try await queue.takeDueRetries(now: 999).isEmpty)
        #expect(try await queue.takeDueRetries(now: 2500) == ["early", "late"])
        #expect(try await queue.takeDueRetries(now: 2500).isEmpty)
        #expect(try await queue.takeDueRetries(now: 9999) == ["later"])
        await queue.shutdown()
    }

    @Test func signalsReachEverySubscriberAndSurviveARestart() async throws {
        let redis = try await blocking { try PrivateRedis() }
        let url = try RedisURL(parsing: redis.url)
        let queue = StepQueue(url: url, consumer: "a")
        let seen = NIOLockedValueBox<[NodeSignal]>([])
        let subscription = queue.subscribeToSignals { signal in seen.withLockedValue { $0.append(signal) } }
        let one = NodeSignal.callOff(stepID: "s1", attempt: 2, reason: "timed out after 30 s")
        try await eventually { try await queue.publish(one); return seen.withLockedValue { $0.contains(one) } }
        try await blocking { redis.stop() }
        try await blocking { try redis.start() }
        let two = NodeSignal.callOff(stepID: "s2", attempt: 1, reason: "the task was cancelled")
        try await eventually { try? await queue.publish(two); return seen.withLockedValue { $0.contains(two) } }
        await subscription.cancel()
        await queue.shutdown()
    }

    @Test func aSignalIsReadBackAsSentAndTextThatIsNoSignalIsPassedOver() {
        let signal = NodeSignal.callOff(stepID: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", attempt: 3, reason: "timed out after 5 s")
        #expect(NodeSignal(decoding: signal.encoded) == signal, "a reason with spaces survives")
        #expect(NodeSignal(decoding: "cancel s1 2") == .callOff(stepID: "s1", attempt: 2, reason: "the task was cancelled"),
                "an earlier node's signal, with no reason, is a cancelled task")
        for text in ["", "cancel", "cancel s1", "cancel s1 two", "cancel  2", "cancel s1 99999999999", "stop s1 2", "cancels1 2"] {
            #expect(NodeSignal(decoding: text) == nil, "\(text.debugDescription) is no signal")
        }
    }
}

/// Polls `condition` until it holds, for up to 10 s.
func eventually(_ condition: () async throws -> Bool) async throws {
    let deadline = Date().addingTimeInterval(10)
    while Date() < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(50))
    }
    Issue.record("condition not met within 10 s")
}
