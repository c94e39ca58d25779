import Foundation
import NIOConcurrencyHelpers
import NIOPosix
import TaskerDev
import Testing

@testable import TaskerQueue

func ready(
    _ handler: String, _ stepID: String, _ priority: Int = StepQueue.defaultPriority, limit: ConcurrencyLimit? = nil, rates: String? = nil
) -> ReadyStep {
    ReadyStep(handler: handler, stepID: stepID, priority: priority, limit: limit, rates: rates)
}

@Suite(.timeLimit(.minutes(2))) struct StepQueueTests {
    @Test func stepsGoThroughTheirHandlersStreamsOnceEach() async throws {
        let redis = try await blocking { try PrivateRedis() }
        let url = try RedisURL(parsing: redis.url)
        let nodeA = StepQueue(url: url, consumer: "a", readBlockMilliseconds: 100)
        let nodeB = StepQueue(url: url, consumer: "b", readBlockMilliseconds: 100)
        try await nodeA.enqueue([ready("pay", "s1"), ready("ship", "s2"), ready("pay", "s3")])
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
        try await queue.enqueue([ready("pay", "s1")])
        #expect(try await queue.state(of: "pay").undelivered == 1)
        let lane = RedisLane(url: url)
        try await lane.command(["FLUSHALL"])
        #expect(try await queue.state(of: "pay").exists == false)
        #expect(try await queue.read(["pay": 1]).isEmpty, "a missing group is made again, not an error")
        try await queue.enqueue([ready("pay", "s2")])
        #expect(try await queue.read(["pay": 1]).map(\.stepID) == ["s2"])
        await lane.shutdown()
        await queue.shutdown()
    }

    @Test func aHandlersStepsAreReadByPriorityThenByWhenTheyWereQueued() async throws {
        let redis = try await blocking { try PrivateRedis() }
        let url = try RedisURL(parsing: redis.url)
        let queue = StepQueue(url: url, consumer: "a", readBlockMilliseconds: 100)
        try await queue.enqueue([ready("pay", "low", 5), ready("pay", "default"), ready("pay", "first", 1), ready("pay", "first-too", 1), ready("ship", "other", 2)])
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
        let queue = StepQueue(url: url, consumer: "a", readBlockMilliseconds: 100, agingInterval: .seconds(10))
        // A priority-5 step queued 25 s ago (by Redis's clock): it has waited two intervals
        // and a half, so it ranks as 3 (as 2 from 30 s, as 1 from 40 s on: slack for a slow machine).
        let lane = RedisLane(url: url)
        let time = try await lane.command(["TIME"]).array.compactMap(\.string).compactMap(Int.init)
        let stream = StepQueue.streamKey("pay", priority: 5)
        _ = try await lane.command(["XGROUP", "CREATE", stream, StepQueue.group, "0", "MKSTREAM"])
        _ = try await lane.command(["XADD", stream, "\(time[0] * 1000 - 25_000)-0", "step", "patient"])
        try await queue.enqueue([ready("pay", "now", 3), ready("pay", "urgent", 1)])
        // Ahead of a 3 queued now (older at the same rank), behind a 1.
        #expect(try await queue.read(["pay": 3]).map(\.stepID) == ["urgent", "patient", "now"])
        await lane.shutdown()
        await queue.shutdown()
        _ = try? await blocking { redis.stop() }
    }

    @Test func aFullKeysStepsWaitInLineAndGoInOrderAsPlacesFree() async throws {
        let redis = try await blocking { try PrivateRedis() }
        let queue = StepQueue(url: try RedisURL(parsing: redis.url), consumer: "a", readBlockMilliseconds: 100)
        let limit = ConcurrencyLimit(key: "customer:7", maxRunning: 2)
        let rates = #"[["roomy|\\u0000",100,1000,1]]"#
        try await queue.enqueue([ready("pay", "s1", limit: limit), ready("pay", "s2", limit: limit, rates: rates), ready("pay", "s3", 1, limit: limit),
                                 ready("pay", "s4", limit: limit), ready("pay", "free")])
        let read = try await queue.read(["pay": 5])
        #expect(read.map(\.stepID) == ["s3", "s1", "s2", "s4", "free"])
        #expect(read.first?.limit == limit && read.last?.limit == nil, "the limit travels with the entry")
        let waiting = try await queue.admit(read).waiting
        #expect(waiting == [2, 3], "two places: s3 and s1 take them, s2 and s4 wait; a step without a limit is not asked")
        #expect(try await queue.parked(["s1", "s2", "s4", "free"]) == ["s2", "s4"])
        #expect(try await queue.admit([read[0]]).waiting.isEmpty, "a step that holds a place keeps it")
        try await queue.acknowledge(read)
        #expect(try await queue.read(["pay": 5]).isEmpty, "the waiting left the stream")
        try await queue.release([("s3", limit)])
        let next = try await queue.read(["pay": 5])
        #expect(next.map(\.stepID) == ["s2"], "the first in line goes back to its stream with the place")
        #expect(next.first?.rates == rates, "and with its rate limits")
        #expect(try await queue.admit(next).waiting.isEmpty)
        #expect(try await queue.parked(["s2", "s4"]) == ["s4"])
        try await queue.release([("s1", limit), ("s2", limit)])
        #expect(try await queue.read(["pay": 5]).map(\.stepID) == ["s4"])
        let keys = try await queue.limitedKeys()
        #expect(keys.count == 1 && Set(keys[0].holders) == ["s4"] && keys[0].waiting == 0)
        await queue.shutdown()
        _ = try? await blocking { redis.stop() }
    }

    @Test func lostHoldersAreRebuiltAndStaleOnesLetTheLineGo() async throws {
        let redis = try await blocking { try PrivateRedis() }
        let url = try RedisURL(parsing: redis.url)
        let queue = StepQueue(url: url, consumer: "a", readBlockMilliseconds: 100)
        let limit = ConcurrencyLimit(key: "k", maxRunning: 1)
        try await queue.enqueue([ready("pay", "s1", limit: limit), ready("pay", "s2", limit: limit)])
        let read = try await queue.read(["pay": 2])
        #expect(try await queue.admit(read).waiting == [1])
        // s1's release was lost: the sweeper finds it no longer running.
        try await queue.reconcile(stale: [("s1", ConcurrencyLimit(key: "k", maxRunning: 0))], running: [])
        try await queue.tidyLimits()
        #expect(try await queue.read(["pay": 2]).map(\.stepID) == ["s2"], "the line moved on")
        // Redis lost the holders: a step Postgres says runs holds its place again.
        let lane = RedisLane(url: url)
        _ = try await lane.command(["DEL", "tasker:concurrency:k"])
        try await queue.reconcile(stale: [], running: [("s2", limit)])
        #expect(try await queue.limitedKeys().first?.holders == ["s2"])
        try await queue.release([("s2", limit)])
        try await queue.tidyLimits()
        #expect(try await queue.limitedKeys().isEmpty, "a key with no holder and no line is forgotten")
        await lane.shutdown()
        await queue.shutdown()
        _ = try? await blocking { redis.stop() }
    }

    @Test func aSpentRateLimitParksItsStepsUntilItHasRoomAndLetsThemGoInOrder() async throws {
        let redis = try await blocking { try PrivateRedis() }
        let queue = StepQueue(url: try RedisURL(parsing: redis.url), consumer: "a", readBlockMilliseconds: 100)
        // Two per 2 s (a 2.1 s window with its margin); s3 also takes a place of a concurrency key.
        let rates = #"[["api",2,2000,1]]"#
        let limit = ConcurrencyLimit(key: "c", maxRunning: 5)
        try await queue.enqueue([ready("pay", "s1", rates: rates), ready("pay", "s2", rates: rates),
                                 ready("pay", "s3", limit: limit, rates: rates), ready("pay", "s4", rates: rates)])
        let read = try await queue.read(["pay": 4])
        #expect(read.map(\.rates) == Array(repeating: rates, count: 4), "the limits travel with the entry")
        let asked = ContinuousClock.now
        let admission = try await queue.admit(read)
        #expect(admission.waiting == [2, 3], "two fit the window: s3 and s4 wait")
        let room = try #require(admission.nextRoom)
        #expect(room > .milliseconds(1500) && room <= .milliseconds(2100), "room when the first spend leaves the window: \(room)")
        #expect(try await queue.parked(["s1", "s3", "s4"]) == ["s3", "s4"])
        #expect(try await queue.limitedKeys().first?.holders.isEmpty ?? true, "a parked step holds no concurrency place")
        let waits = try await queue.rateWaits(["s3", "s4", "s1"])
        #expect(waits.keys.sorted() == ["s3", "s4"] && waits["s3"]?.key == "api")
        try await queue.acknowledge(read)
        #expect(try await queue.read(["pay": 4]).isEmpty, "the parked left the stream")
        let early = try await queue.wakeRateParked().woken
        if ContinuousClock.now - asked < room { #expect(early == 0, "not yet") }
        try await Task.sleep(for: room + .milliseconds(20))
        let woken = try await queue.wakeRateParked()
        #expect(early + woken.woken == 2 && woken.next == nil, "both spends left the window: both go")
        let again = try await queue.read(["pay": 4])
        #expect(again.map(\.stepID) == ["s3", "s4"], "in the order they were parked")
        #expect(again.first?.limit == limit, "the concurrency limit came back with it")
        #expect(try await queue.admit(again).waiting.isEmpty)
        #expect(try await queue.parked(["s3", "s4"]).isEmpty)
        // A third in the same window waits, with room one window after the first of the two.
        try await queue.enqueue([ready("pay", "s5", rates: rates)])
        let later = try await queue.admit(try await queue.read(["pay": 1]))
        #expect(later.waiting == [0] && (later.nextRoom ?? .zero) <= .milliseconds(2100))
        await queue.shutdown()
        _ = try? await blocking { redis.stop() }
    }

    @Test func aStepStartsAtOnceOnlyWhenItOvertakesNoOneAndItsFreshPlaceIsNotJudged() async throws {
        let redis = try await blocking { try PrivateRedis() }
        let url = try RedisURL(parsing: redis.url)
        let queue = StepQueue(url: url, consumer: "a", readBlockMilliseconds: 100)
        let lane = RedisLane(url: url)
        let limit = ConcurrencyLimit(key: "k", maxRunning: 2)
        let rates = #"[["api",3,60000,1]]"#
        let admitted = try await queue.admitAtOnce([("a1", limit, nil), ("a2", limit, rates), ("a3", limit, nil), ("r1", nil, rates)])
        #expect(admitted == ["a1", "a2", "r1"], "two places: a3 finds the key full and is left for the queue")
        #expect(try await queue.limitedKeys(settling: 30).map(\.holders) == [[]], "places a moment old are not judged: their starts may not have committed")
        #expect(Set(try await queue.limitedKeys().first?.holders ?? []) == ["a1", "a2"])
        #expect(try await lane.command(["HEXISTS", "tasker:concurrency:k", "a3"]).integer == 0, "one left out takes nothing")
        #expect(try await queue.admitAtOnce([("r2", nil, rates), ("r3", nil, rates)]) == ["r2"], "three a minute: a2, r1 and r2 spent them")

        // A step waiting in the key's line, or parked for a rate, is not overtaken.
        try await queue.release([("a1", limit)])
        try await queue.enqueue([ready("pay", "q1", limit: ConcurrencyLimit(key: "full", maxRunning: 1)),
                                 ready("pay", "q2", limit: ConcurrencyLimit(key: "full", maxRunning: 1))])
        #expect(try await queue.admit(try await queue.read(["pay": 2])).waiting == [1])
        _ = try await lane.command(["HDEL", "tasker:concurrency:full", "q1"])
        #expect(try await queue.admitAtOnce([("b1", ConcurrencyLimit(key: "full", maxRunning: 1), nil), ("b2", limit, nil)]) == ["b2"],
                "the full key's line is first; the other key has room")
        try await queue.enqueue([ready("pay", "p1", rates: #"[["api",3,60000,1]]"#)])
        #expect(try await queue.admit(try await queue.read(["pay": 1])).waiting == [0], "the rate is spent: p1 is parked")
        #expect(try await queue.admitAtOnce([("r4", nil, #"[["other",100,1000,1]]"#)]).isEmpty, "a step is parked for a rate: none overtakes it")
        #expect(try await queue.admitAtOnce([("c1", ConcurrencyLimit(key: "c", maxRunning: 1), nil)]) == ["c1"], "a step without rates is not held up")
        await lane.shutdown()
        await queue.shutdown()
        _ = try? await blocking { redis.stop() }
    }

    @Test func committedTransitionsReachTheQueueTogetherEvenWhenRedisForgotItsScripts() async throws {
        let redis = try await blocking { try PrivateRedis() }
        let url = try RedisURL(parsing: redis.url)
        let queue = StepQueue(url: url, consumer: "a", readBlockMilliseconds: 100)
        let lane = RedisLane(url: url)
        let limit = ConcurrencyLimit(key: "k", maxRunning: 1)
        try await queue.update(ready: [ready("pay", "s1", limit: limit), ready("pay", "s2", limit: limit)], released: [], retries: [])
        let read = try await queue.read(["pay": 2])
        #expect(try await queue.admit(read).waiting == [1])
        try await queue.acknowledge(read)
        try await queue.release([("none", limit)])  // the script is known to this Redis now
        for round in 0..<2 {
            // The first round runs the script by its digest; the second after Redis forgot it.
            let (done, next) = round == 0 ? ("s1", "s2") : ("s2", "s3")
            if round == 1 {
                try await queue.enqueue([ready("pay", "s3", limit: limit)])
                #expect(try await queue.admit(try await queue.read(["pay": 1])).waiting == [0])
                _ = try await lane.command(["SCRIPT", "FLUSH"])
            }
            try await queue.update(ready: [ready("ship", "x\(round)")], released: [(done, limit)], retries: [("r\(round)", 4_000_000_000)])
            #expect(try await queue.read(["pay": 2]).map(\.stepID) == [next], "the place went to the first in line")
            #expect(try await queue.read(["ship": 2]).map(\.stepID) == ["x\(round)"])
            #expect(try await lane.command(["ZSCORE", StepQueue.retriesKey, "r\(round)"]).string == "4000000000000")
        }
        await lane.shutdown()
        await queue.shutdown()
        _ = try? await blocking { redis.stop() }
    }

    @Test func aRateParkedStepWhoseWakeRedisLostIsNotCountedAsParked() async throws {
        let redis = try await blocking { try PrivateRedis() }
        let url = try RedisURL(parsing: redis.url)
        let queue = StepQueue(url: url, consumer: "a", readBlockMilliseconds: 100)
        let lane = RedisLane(url: url)
        _ = try await lane.command(["HSET", "tasker:rate-waiting", "old", #"["api",1000]"#, "new", #"["api",\#(Int(Date().timeIntervalSince1970 * 1000) + 5000)]"#])
        #expect(try await queue.parked(["old", "new"]) == ["new"], "a wake a minute overdue was lost: the sweeper may queue the step again")
        await lane.shutdown()
        await queue.shutdown()
        _ = try? await blocking { redis.stop() }
    }

    @Test func abandonedDeliveriesAreDropped() async throws {
        let redis = try await blocking { try PrivateRedis() }
        let url = try RedisURL(parsing: redis.url)
        let queue = StepQueue(url: url, consumer: "a", readBlockMilliseconds: 100)
        try await queue.enqueue([ready("pay", "s1"), ready("pay", "s2")])
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
