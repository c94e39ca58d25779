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

    /// A step's rate limits: each key parses, and limit, period and units are in range.
    private static func validateRateLimits(_ limits: [Tasker_V1_RateLimit], _ stepLabel: String) throws(EngineError) {
        guard limits.count <= InputLimits.rateLimitsPerStep else {
            throw .invalidArgument("\(stepLabel) has \(limits.count) rate_limits, over the limit of \(InputLimits.rateLimitsPerStep)")
        }
        for (index, limit) in limits.enumerated() {
            let label = "\(stepLabel) rate_limits[\(index)]"
            try InputCheck.text(limit.key, "\(label) key", limit: InputLimits.labelBytes)
            do {
                _ = try RateLimitTemplate(limit)
            } catch {
                throw .invalidArgument("\(label) key: \(error.description)")
            }
            guard (1...InputLimits.rateLimit).contains(limit.limit) else {
                throw .invalidArgument("\(label) has limit \(limit.limit); it must be 1 to \(InputLimits.rateLimit)")
            }
            guard (1...InputLimits.ratePeriodSeconds).contains(limit.periodSeconds) else {
                throw .invalidArgument("\(label) has period_seconds \(limit.periodSeconds); it must be 1 to \(InputLimits.ratePeriodSeconds)")
            }
            guard (0...limit.limit).contains(limit.units) else {
                throw .invalidArgument(
                    "\(label) has units \(limit.units); it must be 0 (meaning 1) to its limit, \(limit.limit): an attempt spending more could never start")
            }
        }
    }

    public static func validate(_ template: Tasker_V1_TaskTemplate) throws(EngineError) -> ValidatedTemplate {
        var template = template
        try InputCheck.text(template.name, "template name", limit: InputLimits.nameBytes)
        guard !template.name.allSatisfy(\.isWhitespace) else { throw .invalidArgument("the template has no name") }
        let label = "template \(InputCheck.quoted(template.name))"
        try InputCheck.text(template.version, "\(label) version", limit: InputLimits.nameBytes)
        guard !template.version.allSatisfy(\.isWhitespace) else { throw .invalidArgument("\(label) has no version") }
        try InputCheck.text(template.description_p, "\(label) description", limit: InputLimits.reasonBytes)
        try InputCheck.text(template.contextSchemaJson, "\(label) context_schema_json", limit: InputLimits.schemaBytes)
        guard !template.steps.isEmpty else { throw .invalidArgument("\(label) has no steps") }
        guard template.steps.count <= InputLimits.stepsPerTemplate else {
            throw .invalidArgument("\(label) has \(template.steps.count) steps, over the limit of \(InputLimits.stepsPerTemplate)")
        }
        let dependencies = template.steps.reduce(0) { $0 + $1.dependsOn.count }
        guard dependencies <= InputLimits.dependenciesPerTemplate else {
            throw .invalidArgument("\(label) lists \(dependencies) dependencies in all, over the limit of \(InputLimits.dependenciesPerTemplate)")
        }

        guard (0...Int32(InputLimits.seconds)).contains(template.timeoutSeconds) else {
            throw .invalidArgument("\(label) has timeout_seconds \(template.timeoutSeconds); it must be between 0 (no limit) and \(InputLimits.seconds)")
        }
        if template.hasConcurrency {
            try InputCheck.text(template.concurrency.key, "\(label) concurrency key", limit: InputLimits.labelBytes)
            do {
                _ = try LimitKey(parsing: template.concurrency.key)
            } catch {
                throw .invalidArgument("\(label) concurrency key: \(error.description)")
            }
            guard (1...InputLimits.concurrencyMaxRunning).contains(template.concurrency.maxRunning) else {
                throw .invalidArgument(
                    "\(label) concurrency max_running is \(template.concurrency.maxRunning); it must be 1 to \(InputLimits.concurrencyMaxRunning)")
            }
        }
        var names = Set<String>()
        for index in template.steps.indices {
            let step = template.steps[index]
            try InputCheck.text(step.name, "step \(index + 1)'s name", limit: InputLimits.nameBytes)
            guard !step.name.isEmpty else { throw .invalidArgument("step \(index + 1) has no name") }
            let stepLabel = "step \(InputCheck.quoted(step.name))"
            guard names.insert(step.name).inserted else { throw .invalidArgument("duplicate \(stepLabel)") }
            try InputCheck.text(step.handler, "\(stepLabel) handler", limit: InputLimits.nameBytes)
            guard !step.handler.allSatisfy(\.isWhitespace) else { throw .invalidArgument("\(stepLabel) has an empty handler") }
            try InputCheck.text(step.description_p, "\(stepLabel) description", limit: InputLimits.stepDescriptionBytes)
            try InputCheck.text(step.dependentSystem, "\(stepLabel) dependent_system", limit: InputLimits.labelBytes)
            try InputCheck.texts(step.dependsOn, "\(stepLabel) depends_on", limit: InputLimits.nameBytes, count: InputLimits.dependenciesPerTemplate)
            guard (0...InputLimits.retryLimit).contains(step.retryLimit) else {
                throw .invalidArgument("\(stepLabel) has retry_limit \(step.retryLimit); it must be between 0 (the default, 3) and \(InputLimits.retryLimit)")
            }
            guard (0...Int32(InputLimits.seconds)).contains(step.scheduleToStartSeconds) else {
                throw .invalidArgument(
                    "\(stepLabel) has schedule_to_start_seconds \(step.scheduleToStartSeconds); it must be between 0 (no limit) and \(InputLimits.seconds)")
            }
            guard (0...Int32(InputLimits.seconds)).contains(step.timeoutSeconds) else {
                throw .invalidArgument("\(stepLabel) has timeout_seconds \(step.timeoutSeconds); it must be between 0 (no limit) and \(InputLimits.seconds)")
            }
            let seconds = 0...Double(InputLimits.seconds)
            try InputCheck.number(step.backoff.baseSeconds, "\(stepLabel) backoff base_seconds", seconds)
            try InputCheck.number(step.backoff.maxSeconds, "\(stepLabel) backoff max_seconds", seconds)
            try InputCheck.number(step.backoff.jitter, "\(stepLabel) backoff jitter", 0...1)
            if Set(step.dependsOn).count != step.dependsOn.count {
                throw .invalidArgument("\(stepLabel) lists a dependency twice")
            }
            if step.hasConcurrency {
                try InputCheck.text(step.concurrency.key, "\(stepLabel) concurrency key", limit: InputLimits.labelBytes)
                do {
                    _ = try LimitKey(parsing: step.concurrency.key)
                } catch {
                    throw .invalidArgument("\(stepLabel) concurrency key: \(error.description)")
                }
                guard (1...InputLimits.concurrencyMaxRunning).contains(step.concurrency.maxRunning) else {
                    throw .invalidArgument(
                        "\(stepLabel) concurrency max_running is \(step.concurrency.maxRunning); it must be 1 to \(InputLimits.concurrencyMaxRunning)")
                }
            }
            try validateRateLimits(step.rateLimits, stepLabel)
        }
        for step in template.steps {
            for dependency in step.dependsOn where !names.contains(dependency) {
                throw .invalidArgument("step \(InputCheck.quoted(step.name)) depends on unknown step \(InputCheck.quoted(dependency))")
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
                throw .invalidArgument("step \(InputCheck.quoted(step.name)) has backoff max_seconds below base_seconds")
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

