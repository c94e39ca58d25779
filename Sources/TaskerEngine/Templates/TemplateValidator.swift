import Foundation
import SwiftProtobuf
import TaskerProto

/// A template that passed validation, with its defaults filled in.
public struct ValidatedTemplate: Sendable {
    public let template: Tasker_V1_TaskTemplate
    /// Step names in an order where every step comes after its dependencies.
    public let order: [String]
    public let schema: JSONSchema?

    /// The normalized template, serialized deterministically: the same content gives the same
    /// bytes, which is how a repeated registration is told from a conflicting one.
    public var definition: [UInt8] {
        var options = BinaryEncodingOptions()
        options.useDeterministicOrdering = true
        // A message of in-memory values always encodes.
        return try! template.serializedBytes(options: options)
    }
}

/// Checks a template and fills in its defaults, or says exactly what is wrong with it.
public enum TemplateValidator {
    public static let defaultRetryLimit: Int32 = 3
    public static let defaultBackoff = (base: 1.0, max: 300.0, jitter: 0.1)

    public static func validate(_ template: Tasker_V1_TaskTemplate) throws(EngineError) -> ValidatedTemplate {
        var template = template
        guard !template.name.trimmingCharacters(in: .whitespaces).isEmpty else { throw .invalidArgument("the template has no name") }
        guard !template.version.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw .invalidArgument("template '\(template.name)' has no version")
        }
        guard !template.steps.isEmpty else { throw .invalidArgument("template '\(template.name)' has no steps") }

        var names = Set<String>()
        for index in template.steps.indices {
            let step = template.steps[index]
            guard !step.name.isEmpty else { throw .invalidArgument("step \(index + 1) has no name") }
            guard names.insert(step.name).inserted else { throw .invalidArgument("duplicate step '\(step.name)'") }
            guard !step.handler.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw .invalidArgument("step '\(step.name)' has an empty handler")
            }
            guard step.retryLimit >= 0 else { throw .invalidArgument("step '\(step.name)' has a negative retry_limit") }
            guard step.timeoutSeconds >= 0 else { throw .invalidArgument("step '\(step.name)' has a negative timeout_seconds") }
            let backoff = step.backoff
            guard backoff.baseSeconds >= 0, backoff.maxSeconds >= 0, backoff.baseSeconds.isFinite, backoff.maxSeconds.isFinite else {
                throw .invalidArgument("step '\(step.name)' has a negative backoff")
            }
            guard (0...1).contains(backoff.jitter) else {
                throw .invalidArgument("step '\(step.name)' has backoff jitter \(backoff.jitter); it must be between 0 and 1")
            }
            if Set(step.dependsOn).count != step.dependsOn.count {
                throw .invalidArgument("step '\(step.name)' lists a dependency twice")
            }
        }
        for step in template.steps {
            for dependency in step.dependsOn where !names.contains(dependency) {
                throw .invalidArgument("step '\(step.name)' depends on unknown step '\(dependency)'")
            }
        }
        let order = try topologicalOrder(template.steps)

        for index in template.steps.indices {
            var step = template.steps[index]
            if !step.hasRetryable { step.retryable = true }
            if step.retryLimit == 0 { step.retryLimit = defaultRetryLimit }
            if step.backoff.baseSeconds == 0 { step.backoff.baseSeconds = defaultBackoff.base }
            if step.backoff.maxSeconds == 0 { step.backoff.maxSeconds = defaultBackoff.max }
            if step.backoff.jitter == 0 { step.backoff.jitter = defaultBackoff.jitter }
            if step.backoff.maxSeconds < step.backoff.baseSeconds {
                throw .invalidArgument("step '\(step.name)' has backoff max_seconds below base_seconds")
            }
            template.steps[index] = step
        }

        var schema: JSONSchema?
        if !template.contextSchemaJson.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            do {
                schema = try JSONSchema(text: template.contextSchemaJson)
            } catch {
                throw .invalidArgument("\(error)")
            }
        }
        return ValidatedTemplate(template: template, order: order, schema: schema)
    }

    /// Kahn's algorithm; a cycle is reported with its steps in order.
    static func topologicalOrder(_ steps: [Tasker_V1_StepTemplate]) throws(EngineError) -> [String] {
        var unmet = Dictionary(uniqueKeysWithValues: steps.map { ($0.name, $0.dependsOn.count) })
        var dependents: [String: [String]] = [:]
        for step in steps {
            for dependency in step.dependsOn { dependents[dependency, default: []].append(step.name) }
        }
        var ready = steps.filter { $0.dependsOn.isEmpty }.map(\.name)
        var order: [String] = []
        while let name = ready.first {
            ready.removeFirst()
            order.append(name)
            for dependent in dependents[name, default: []] {
                unmet[dependent]! -= 1
                if unmet[dependent] == 0 { ready.append(dependent) }
            }
        }
        guard order.count == steps.count else {
            throw .invalidArgument("the steps form a cycle: \(cycle(in: steps, excluding: Set(order)).joined(separator: " → "))")
        }
        return order
    }

    /// One cycle among the steps Kahn's algorithm could not order.
    private static func cycle(in steps: [Tasker_V1_StepTemplate], excluding ordered: Set<String>) -> [String] {
        let byName = Dictionary(uniqueKeysWithValues: steps.map { ($0.name, $0) })
        guard var current = steps.first(where: { !ordered.contains($0.name) })?.name else { return [] }
        var path: [String] = []
        var seen: [String: Int] = [:]
        while seen[current] == nil {
            seen[current] = path.count
            path.append(current)
            current = byName[current]!.dependsOn.first { !ordered.contains($0) }!
        }
        // Dependencies point backwards: reversed, the cycle reads in execution order. It starts
        // at the step that comes first in the template, so the message is stable.
        let members = Array(path[seen[current]!...].reversed())
        let position = Dictionary(uniqueKeysWithValues: steps.enumerated().map { ($1.name, $0) })
        let start = members.indices.min { position[members[$0]]! < position[members[$1]]! }!
        let rotated = Array(members[start...] + members[..<start])
        return rotated + [rotated[0]]
    }
}

