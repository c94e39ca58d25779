import Foundation
import SwiftProtobuf
import TaskerProto
@testable import TaskerEngine

/// The first byte picks a message type; the rest is its bytes. Each is decoded as the server
/// decodes it, then put through the checks that run before any SQL. A decode error or a
/// refusal is fine; a crash, a hang or a refusal message that shows a whole huge input is not.
enum FuzzRequests {
    static func run(_ input: UnsafeRawBufferPointer) {
        guard let first = input.first else { return }
        let bytes = Data(input[1...])
        switch first % 12 {
        case 0: decode(Tasker_V1_RegisterTaskTemplateRequest.self, bytes) { _ = try TemplateValidator.validate($0.template) }
        case 1: decode(Tasker_V1_ListTaskTemplatesRequest.self, bytes) { _ in }
        case 2: decode(Tasker_V1_SubmitTaskRequest.self, bytes) { _ = try TaskEngine.check($0) }
        case 3: decode(Tasker_V1_GetTaskRequest.self, bytes) { _ = try TaskEngine.taskID($0.taskID) }
        case 4: decode(Tasker_V1_ListTasksRequest.self, bytes) { _ in }
        case 5: decode(Tasker_V1_CancelTaskRequest.self, bytes) {
            _ = try TaskEngine.taskID($0.taskID)
            try InputCheck.text($0.reason, "reason", limit: InputLimits.reasonBytes)
        }
        case 6: decode(Tasker_V1_RetryStepRequest.self, bytes) { try InputCheck.text($0.stepName, "step_name", limit: InputLimits.nameBytes) }
        case 7: decode(Tasker_V1_ResolveStepRequest.self, bytes) {
            _ = try InputCheck.json($0.results, "results", limit: InputLimits.resultsBytes)
        }
        case 8: decode(Tasker_V1_StreamStepUpdatesRequest.self, bytes) { _ = try? TaskEngine.taskID($0.taskID) }
        case 9: decode(Tasker_V1_WorkerMessage.self, bytes) { message in
            switch message.kind {
            case .register(let registration):
                try InputCheck.registration(registration)
                for template in registration.templates { _ = try TemplateValidator.validate(template) }
            case .result(let result):
                switch result.outcome {
                case .success(let success): _ = try TaskEngine.checked(.success(results: success.results, annotations: success.annotations))
                case .failure(let failure):
                    _ = try TaskEngine.checked(.failure(message: failure.message, retryable: failure.retryable,
                                                        backoffRequestSeconds: failure.backoffRequestSeconds))
                case nil: break
                }
            case .heartbeat, nil: break
            }
        }
        case 10: decode(Google_Protobuf_Struct.self, bytes) { _ = try InputCheck.json($0, "context", limit: InputLimits.contextBytes) }
        default: decode(Tasker_V1_TaskTemplate.self, bytes) { _ = try TemplateValidator.validate($0) }
        }
    }

    private static func decode<Message: SwiftProtobuf.Message>(
        _ type: Message.Type, _ bytes: Data, check: (Message) throws -> Void
    ) {
        guard let message = try? Message(serializedBytes: bytes) else { return }
        do {
            try check(message)
        } catch {
            guard let error = error as? EngineError else { preconditionFailure("not an EngineError: \(error)") }
            // A refusal never carries more of the input than a short prefix of each value.
            precondition(error.description.utf8.count < 4096 + 1024, "a refusal of \(error.description.utf8.count) bytes")
        }
    }
}
