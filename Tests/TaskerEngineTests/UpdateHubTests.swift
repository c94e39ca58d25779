import TaskerEngine
import TaskerProto
import Testing

private func update(_ task: String, _ sequence: UInt64) -> Tasker_V1_StepUpdate {
    .with {
        $0.taskID = task
        $0.sequence = sequence
    }
}

@Suite struct UpdateHubTests {
    @Test func aWatcherGetsItsTasksUpdatesAndAWatcherOfEveryTaskGetsAll() async {
        let hub = UpdateHub(bufferLimit: 10)
        let one = hub.subscribe(taskID: "t")
        let every = hub.subscribe(taskID: nil)
        hub.deliver([update("t", 1), update("u", 1), update("t", 2)])
        one.cancel()
        every.cancel()
        var seen: [UInt64] = []
        for await item in one.updates { seen.append(item.sequence) }
        var all: [String] = []
        for await item in every.updates { all.append("\(item.taskID)\(item.sequence)") }
        #expect(seen == [1, 2])
        #expect(all == ["t1", "u1", "t2"])
        #expect(hub.watcherCount == 0, "a watcher that stops is forgotten")
    }

    @Test func aWatcherThatFallsBehindItsBufferIsCutOffKeepingWhatItHad() async {
        let hub = UpdateHub(bufferLimit: 3)
        let slow = hub.subscribe(taskID: "t")
        let other = hub.subscribe(taskID: "u")
        hub.deliver((1...5).map { update("t", $0) })
        #expect(slow.ended == .fellBehind)
        var kept: [UInt64] = []
        for await item in slow.updates { kept.append(item.sequence) }
        #expect(kept == [1, 2, 3], "the oldest, in order: the watcher resumes after 3")
        #expect(other.ended == nil, "another task's watcher is untouched")
        #expect(hub.watcherCount == 1)
        other.cancel()
    }

    @Test func ticksTakeOneBufferPlaceAtMost() async {
        let hub = UpdateHub(bufferLimit: 3)
        let quiet = hub.subscribe(taskID: "t")
        for _ in 0..<10 { quiet.tick() }
        hub.deliver([update("t", 1), update("t", 2)])
        #expect(quiet.ended == nil, "ten ticks and two updates fit a buffer of three")
        var iterator = quiet.updates.makeAsyncIterator()
        #expect(await iterator.next()?.sequence == 0)
        quiet.tickTaken()
        quiet.tick()
        quiet.cancel()
        var rest: [UInt64] = []
        while let item = await iterator.next() { rest.append(item.sequence) }
        #expect(rest == [1, 2, 0], "a tick after the last was taken waits again")
    }

    @Test func closingTheHubEndsEveryWatcherAsTheServerStopping() {
        let hub = UpdateHub()
        let watchers = [hub.subscribe(taskID: "t"), hub.subscribe(taskID: nil)]
        hub.closeAll()
        #expect(watchers.allSatisfy { $0.ended == .serverStopping })
        #expect(hub.watcherCount == 0)
    }
}
