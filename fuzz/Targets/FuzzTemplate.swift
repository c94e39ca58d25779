import Foundation
import TaskerProto
@testable import TaskerEngine

enum FuzzTemplate {
    /// A template as protobuf (first byte even) or as JSON (odd), validated; one that passes
    /// must pass again, unchanged, as its own normalized form.
    static func run(_ input: UnsafeRawBufferPointer) {
        guard let first = input.first else { return }
        let bytes = Data(input[1...])
        let template: Tasker_V1_TaskTemplate?
        if first % 2 == 0 {
            template = try? Tasker_V1_TaskTemplate(serializedBytes: bytes)
        } else {
            template = try? Tasker_V1_TaskTemplate(jsonUTF8Data: bytes)
        }
        guard let template, let validated = try? TemplateValidator.validate(template) else { return }
        guard let again = try? TemplateValidator.validate(validated.template) else {
            preconditionFailure("a validated template failed validation as its own normalized form")
        }
        precondition(again.definition == validated.definition, "normalizing a normalized template changed it")
        precondition(Set(validated.order) == Set(template.steps.map(\.name)) && validated.order.count == template.steps.count)
    }
}
