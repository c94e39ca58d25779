import Foundation
import SwiftProtobuf
import TaskerProto

/// What a handler is given: the step to run, its task's context and the results of the
/// steps it depends on.
public struct StepContext: Sendable {
    public let taskID: String
    public let taskName: String
    public let stepID: String
    public let stepName: String
    public let handler: String
    /// 1 for the first attempt.
    public let attempt: Int32
    public let context: Google_Protobuf_Struct
    /// The results of the steps it depends on, by step name.
    public let dependencyResults: [String: Google_Protobuf_Struct]
    /// When the server gives up on this attempt (its step's timeout); nil: no limit.
    public let deadline: Date?

    init(_ assignment: Tasker_V1_StepAssignment) {
        taskID = assignment.taskID
        taskName = assignment.taskName
        stepID = assignment.stepID
        stepName = assignment.stepName
        handler = assignment.handler
        attempt = assignment.attempt
        context = assignment.context
        dependencyResults = assignment.dependencyResults
        deadline = assignment.hasDeadline ? assignment.deadline.date : nil
    }
}

/// Annotations a handler adds to its results.
public struct StepOutput: Sendable {
    public var results: Google_Protobuf_Struct
    public var annotations: [Tasker_V1_Annotation]

    public init(results: Google_Protobuf_Struct = .init(), annotations: [Tasker_V1_Annotation] = []) {
        self.results = results
        self.annotations = annotations
    }
}

/// What a handler throws to say how its attempt failed. Any other error is a retryable
/// failure with the error's description.
public enum StepFailure: Error, Sendable, Equatable {
    /// Worth another attempt, no sooner than `backoffSeconds` from now (like a 429's
    /// Retry-After; 0: the step's backoff policy decides).
    case retryable(String, backoffSeconds: Int32 = 0)
    /// Another attempt would fail the same way: the step goes to ERROR.
    case permanent(String)
}

/// A handler as a type, for a handler with state or dependencies of its own.
public protocol StepHandler: Sendable {
    /// The handler name steps of templates name.
    var name: String { get }
    func run(_ step: StepContext) async throws -> StepOutput
}
