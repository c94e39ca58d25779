import TaskerEngine
import TaskerProto
import Testing

private func update(_ task: String, _ sequence: UInt64) -> Tasker_V1_StepUpdate {
    .with {
        $0.taskID = task
        $0.sequence = sequence
    }
}

@Suite struct UpdateOrderTests {
    @Test func theNextSequenceOfTheTaskIsDelivered() {
        var order = UpdateOrder(task: "t", after: 3)
        #expect(order.admit(update("t", 4)) == .deliver)
        order.delivered(update("t", 4))
        #expect(order.expected("t") == 5)
    }

    @Test func anUpdateSentAlreadyIsADuplicate() {
        var order = UpdateOrder(task: "t", after: 0)
        order.delivered(update("t", 1))
        order.delivered(update("t", 2))
        #expect(order.admit(update("t", 1)) == .duplicate)
        #expect(order.admit(update("t", 2)) == .duplicate)
    }

    @Test func anUpdateAheadOfTheNextNamesTheGapToRead() {
        let order = UpdateOrder(task: "t", after: 2)
        #expect(order.admit(update("t", 7)) == .gap(after: 2, before: 7))
    }

    @Test func aWatcherOfOneTaskDropsOtherTasksUpdates() {
        let order = UpdateOrder(task: "t", after: 0)
        #expect(order.admit(update("other", 1)) == .duplicate)
        #expect(order.expected("other") == nil)
    }

    @Test func aWatcherOfEveryTaskStartsEachTaskAtItsFirstUpdateSeen() {
        var order = UpdateOrder(everyTask: 10)
        #expect(order.admit(update("t", 5)) == .deliver)
        order.delivered(update("t", 5))
        #expect(order.admit(update("t", 4)) == .duplicate)
        #expect(order.admit(update("t", 7)) == .gap(after: 5, before: 7))
        #expect(order.admit(update("u", 1)) == .deliver)
    }

    @Test func aWatcherOfEveryTaskRemembersABoundedNumberOfTasks() {
        var order = UpdateOrder(everyTask: 3)
        for index in 0..<50 { order.delivered(update("t\(index)", 1)) }
        #expect(order.expected("t49") == 2)
        #expect(order.expected("t47") == 2)
        #expect(order.expected("t46") == nil, "forgotten: the oldest go first")
        #expect(order.expected("t0") == nil)
        // A forgotten task starts again at its next update seen.
        #expect(order.admit(update("t0", 9)) == .deliver)
    }
}
