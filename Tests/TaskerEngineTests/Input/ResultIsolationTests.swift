import Foundation
import SwiftProtobuf
import TaskerProto
import Testing

@testable import TaskerEngine

@Suite(.timeLimit(.minutes(2))) struct ResultIsolationTests {
    /// A result the store refuses even though it passed every check (here: a constraint the
    /// test adds) fails the batch's transaction; the other results are then recorded alone
    /// and only that one is answered with the error.
    @Test func aResultTheStoreRefusesCostsNoOtherResultOfItsBatch() async throws {
        let harness = try await TaskerHarness.start()
        _ = try await harness.register(template([step("a")]))
        try await harness.pool.withConnection { connection in
            try connection.query("ALTER TABLE steps ADD CONSTRAINT no_poison CHECK (results IS NULL OR NOT results ? 'poison')")
        }
        var attempts: [(stepID: String, attempt: Int32)] = []
        for _ in 0..<5 {
            let task = try await harness.submit { _ in }.task
            let stepID = task.steps[0].stepID
            attempts.append((stepID, try #require(try await harness.engine.startStep(stepID)).attempt))
        }
        let outcomes = attempts.enumerated().map { index, attempt in
            let key = index == 2 ? "poison" : "ok"
            return (stepID: attempt.stepID, attempt: attempt.attempt,
                    outcome: StepOutcome.success(results: Google_Protobuf_Struct(fields: [key: .init(numberValue: Double(index))]), annotations: []))
        }
        let answers = try await harness.engine.finishSteps(outcomes)
        for (index, answer) in answers.enumerated() {
            if index == 2 {
                guard case .failure(.invalidArgument(let message)) = answer else { Issue.record("\(answer)"); continue }
                #expect(message.contains("could not be stored") && message.contains("no_poison"))
            } else {
                #expect((try? answer.get()) == true)
            }
        }
        let statuses = try await harness.pool.withConnection { connection in
            try connection.query("SELECT step_id::text AS id, status FROM steps").reduce(into: [String: Int]()) { $0[$1["id"]!] = $1.int("status") }
        }
        for (index, attempt) in attempts.enumerated() {
            #expect(statuses[attempt.stepID] == (index == 2 ? StepStatus.inProgress.rawValue : StepStatus.complete.rawValue))
        }
        await harness.stop()
    }

    @Test func resultsThatWouldOutgrowTheTaskFailTheAttemptForGood() async throws {
        let harness = try await TaskerHarness.start()
        _ = try await harness.register(template([step("a"), step("b"), step("c"), step("d"), step("e"), step("f"), step("g")]))
        let task = try await harness.submit { _ in }.task
        let blob = Google_Protobuf_Struct(fields: ["blob": .init(stringValue: String(repeating: "x", count: 250 * 1024))])
        var outcomes: [Bool] = []
        for step in task.steps {
            let attempt = try #require(try await harness.engine.startStep(step.stepID)).attempt
            outcomes.append(try await harness.engine.finishStep(step.stepID, attempt: attempt, outcome: .success(results: blob, annotations: [])))
        }
        #expect(outcomes.allSatisfy { $0 })
        let read = try await harness.task(task.taskID)
        // 6 × 250 KiB fit in 1.5 MiB; the seventh does not.
        #expect(read.steps.prefix(6).allSatisfy { $0.status == .complete })
        #expect(read.steps[6].status == .error)
        #expect(read.steps[6].lastError.message.contains("over the limit of \(InputLimits.taskBytes)"))
        #expect(read.status == .error)
        await harness.stop()
    }
}
