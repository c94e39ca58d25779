import TaskerProto
import Testing

@testable import TaskerEngine

@Suite struct StepStateMachineTests {
    static let statuses: [StepStatus] = [.pending, .enqueued, .inProgress, .complete, .error, .waitingForRetry, .cancelled, .resolvedManually, .skipped]
    static let events: [StepStateMachine.Event] = [.enqueue, .start, .succeed, .fail(retryable: true), .fail(retryable: false), .cancel, .retry, .resolve]

    /// Every allowed (status, event) and where it leads, with 1 of 3 attempts used.
    static let allowed: [StepStatus: [StepStateMachine.Event: StepStatus]] = [
        .pending: [.enqueue: .enqueued, .cancel: .cancelled, .resolve: .resolvedManually],
        .enqueued: [.start: .inProgress, .cancel: .cancelled, .resolve: .resolvedManually],
        .inProgress: [.succeed: .complete, .fail(retryable: true): .waitingForRetry, .fail(retryable: false): .error,
                      .cancel: .cancelled, .resolve: .resolvedManually],
        .waitingForRetry: [.enqueue: .enqueued, .cancel: .cancelled, .resolve: .resolvedManually],
        .error: [.retry: .pending, .resolve: .resolvedManually],
    ]

    @Test(arguments: statuses)
    func everyEdgeFrom(status: StepStatus) {
        for event in Self.events {
            var machine = StepStateMachine(status: status, attempts: 1, retryLimit: 3, retryable: true)
            if let expected = Self.allowed[status]?[event] {
                #expect((try? machine.apply(event)) == expected, "\(status) + \(event)")
                #expect(machine.status == expected)
            } else {
                #expect(throws: StepStateMachine.Refusal(status: status, event: event), "\(status) + \(event)") {
                    try machine.apply(event)
                }
                #expect(machine.status == status, "a refused event changes nothing")
            }
        }
    }

    @Test func startCountsAttemptsAndTheLastFailureIsFinal() throws {
        var machine = StepStateMachine(status: .enqueued, attempts: 0, retryLimit: 2, retryable: true)
        try machine.apply(.start)
        #expect(machine.attempts == 1)
        #expect(try machine.apply(.fail(retryable: true)) == .waitingForRetry)
        try machine.apply(.enqueue)
        try machine.apply(.start)
        #expect(machine.attempts == 2)
        #expect(try machine.apply(.fail(retryable: true)) == .error, "2 of 2 attempts used")
        #expect(try machine.apply(.retry) == .pending)
        #expect(machine.attempts == 0, "RetryStep starts the attempts again")
    }

    @Test func aStepThatIsNotRetryableFailsForGood() throws {
        var machine = StepStateMachine(status: .inProgress, attempts: 1, retryLimit: 5, retryable: false)
        #expect(try machine.apply(.fail(retryable: true)) == .error)
    }
}

@Suite struct TaskStatusRuleTests {
    @Test func followsTheSteps() {
        #expect(TaskStatusRule.status(of: [.pending, .pending], cancelled: false) == .pending)
        #expect(TaskStatusRule.status(of: [.skipped, .pending], cancelled: false) == .pending)
        #expect(TaskStatusRule.status(of: [.enqueued, .pending], cancelled: false) == .pending)
        #expect(TaskStatusRule.status(of: [.inProgress, .pending], cancelled: false) == .inProgress)
        #expect(TaskStatusRule.status(of: [.complete, .skipped, .resolvedManually], cancelled: false) == .complete)
        #expect(TaskStatusRule.status(of: [.complete, .pending], cancelled: true) == .cancelled)
    }

    @Test func errorWaitsForIndependentBranches() {
        #expect(TaskStatusRule.status(of: [.error, .inProgress], cancelled: false) == .inProgress)
        #expect(TaskStatusRule.status(of: [.error, .waitingForRetry], cancelled: false) == .inProgress)
        #expect(TaskStatusRule.status(of: [.error, .enqueued], cancelled: false) == .inProgress)
        #expect(TaskStatusRule.status(of: [.error, .complete, .pending], cancelled: false) == .error,
                "a PENDING step left behind an ERROR can never run")
    }
}

@Suite struct BackoffTests {
    private func policy(base: Double = 1, max: Double = 300, jitter: Double = 0.1) -> Tasker_V1_BackoffPolicy {
        var policy = Tasker_V1_BackoffPolicy()
        policy.baseSeconds = base
        policy.maxSeconds = max
        policy.jitter = jitter
        return policy
    }

    @Test func growsExponentiallyUpToTheMaximum() {
        let delays = (1...10).map { Backoff.delay(attempt: Int32($0), policy: policy(jitter: 0), requestedSeconds: 0) }
        #expect(delays == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300])
    }

    @Test func jitterStaysWithinItsBand() {
        #expect(Backoff.delay(attempt: 3, policy: policy(jitter: 0.1), requestedSeconds: 0, random: 0) == 3.6)
        #expect(abs(Backoff.delay(attempt: 3, policy: policy(jitter: 0.1), requestedSeconds: 0, random: 0.999_999) - 4.4) < 0.001)
        for _ in 0..<100 {
            let delay = Backoff.delay(attempt: 2, policy: policy(jitter: 0.5), requestedSeconds: 0)
            #expect((1.0...3.0).contains(delay))
        }
    }

    @Test func aRequestedBackoffIsTheLeastDelay() {
        #expect(Backoff.delay(attempt: 1, policy: policy(jitter: 0), requestedSeconds: 30) == 30)
        #expect(Backoff.delay(attempt: 9, policy: policy(jitter: 0), requestedSeconds: 30) == 256)
    }

    @Test func hugeAttemptsSaturate() {
        #expect(Backoff.delay(attempt: 5000, policy: policy(jitter: 0), requestedSeconds: 0) == 300)
    }
}
