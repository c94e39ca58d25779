import TaskerProto
import Testing

@testable import TaskerEngine

func step(_ name: String, handler: String? = nil, dependsOn: [String] = []) -> Tasker_V1_StepTemplate {
    var step = Tasker_V1_StepTemplate()
    step.name = name
    step.handler = handler ?? "\(name)_handler"
    step.dependsOn = dependsOn
    return step
}

func template(_ steps: [Tasker_V1_StepTemplate], schema: String = "") -> Tasker_V1_TaskTemplate {
    var template = Tasker_V1_TaskTemplate()
    template.name = "order"
    template.version = "1.0.0"
    template.steps = steps
    template.contextSchemaJson = schema
    return template
}

@Suite struct TemplateValidatorTests {
    let diamond = [step("a"), step("b", dependsOn: ["a"]), step("c", dependsOn: ["a"]), step("d", dependsOn: ["b", "c"])]

    private func refusal(_ template: Tasker_V1_TaskTemplate) -> String? {
        do {
            _ = try TemplateValidator.validate(template)
            return nil
        } catch {
            guard case .invalidArgument(let message) = error else { return "wrong code: \(error)" }
            return message
        }
    }

    @Test func ordersTheDiamondAndFillsDefaults() throws {
        let validated = try TemplateValidator.validate(template(diamond.reversed()))
        let position = Dictionary(uniqueKeysWithValues: validated.order.enumerated().map { ($1, $0) })
        #expect(position["a"]! < position["b"]! && position["a"]! < position["c"]!)
        #expect(position["b"]! < position["d"]! && position["c"]! < position["d"]!)
        for step in validated.template.steps {
            #expect(step.retryable)
            #expect(step.retryLimit == 3)
            #expect(step.backoff.baseSeconds == 1 && step.backoff.maxSeconds == 300 && step.backoff.jitter == 0.1)
        }
    }

    @Test func keepsExplicitSettings() throws {
        var custom = step("a")
        custom.retryable = false
        custom.retryLimit = 7
        custom.backoff.baseSeconds = 2
        let validated = try TemplateValidator.validate(template([custom]))
        #expect(validated.template.steps[0].retryable == false)
        #expect(validated.template.steps[0].retryLimit == 7)
        #expect(validated.template.steps[0].backoff.baseSeconds == 2)
    }

    @Test func sameContentSameDefinitionBytes() throws {
        let first = try TemplateValidator.validate(template(diamond))
        let second = try TemplateValidator.validate(template(diamond))
        #expect(first.definition == second.definition)
        let other = try TemplateValidator.validate(template(Array(diamond.dropLast())))
        #expect(first.definition != other.definition)
    }

    @Test func refusesACycleAndShowsIt() {
        let message = refusal(template([step("a", dependsOn: ["c"]), step("b", dependsOn: ["a"]), step("c", dependsOn: ["b"])]))
        #expect(message == "the steps form a cycle: a → b → c → a")
        #expect(refusal(template([step("a", dependsOn: ["a"])])) == "the steps form a cycle: a → a")
    }

    @Test func refusesUnknownAndDuplicateSteps() {
        #expect(refusal(template([step("a", dependsOn: ["ghost"])])) == "step 'a' depends on unknown step 'ghost'")
        #expect(refusal(template([step("a"), step("a")])) == "duplicate step 'a'")
        #expect(refusal(template([step("a"), step("b", dependsOn: ["a", "a"])])) == "step 'b' lists a dependency twice")
    }

    @Test func refusesEmptyHandlerNameVersionAndSteps() {
        #expect(refusal(template([step("a", handler: " ")])) == "step 'a' has an empty handler")
        #expect(refusal(template([step("")])) == "step 1 has no name")
        #expect(refusal(template([])) == "template 'order' has no steps")
        var unnamed = template([step("a")])
        unnamed.name = ""
        #expect(refusal(unnamed) == "the template has no name")
        var unversioned = template([step("a")])
        unversioned.version = ""
        #expect(refusal(unversioned) == "template 'order' has no version")
    }

    @Test func refusesBadNumbers() {
        var negative = step("a")
        negative.retryLimit = -1
        #expect(refusal(template([negative])) == "step 'a' has retry_limit -1; it must be between 0 (the default, 3) and 1000")
        var jitter = step("a")
        jitter.backoff.jitter = 1.5
        #expect(refusal(template([jitter]))?.contains("backoff jitter is 1.5") == true)
        var inverted = step("a")
        inverted.backoff.baseSeconds = 10
        inverted.backoff.maxSeconds = 5
        #expect(refusal(template([inverted])) == "step 'a' has backoff max_seconds below base_seconds")
    }

    @Test func refusesBadRateLimitsNamingTheField() {
        func limited(_ limits: [(key: String, limit: Int32, period: Int32, units: Int32)]) -> Tasker_V1_TaskTemplate {
            var limited = step("a")
            limited.rateLimits = limits.map { limit in .with { $0.key = limit.key; $0.limit = limit.limit; $0.periodSeconds = limit.period; $0.units = limit.units } }
            return template([limited])
        }
        #expect(refusal(limited([("api", 0, 1, 0)])) == "step 'a' rate_limits[0] has limit 0; it must be 1 to 1000000")
        #expect(refusal(limited([("api", 5, 1, 0), ("x", 5, 0, 0)])) == "step 'a' rate_limits[1] has period_seconds 0; it must be 1 to 86400")
        #expect(refusal(limited([("api", 5, 90_000, 0)]))?.contains("period_seconds 90000") == true)
        #expect(refusal(limited([("api", 5, 1, 6)])) == "step 'a' rate_limits[0] has units 6; it must be 0 (meaning 1) to its limit, 5: an attempt spending more could never start")
        #expect(refusal(limited([("api:{$.id", 5, 1, 0)])) == "step 'a' rate_limits[0] key: a '{' with no '}' after it; write a path as {$.name}")
        #expect(refusal(limited(Array(repeating: ("api", 5, 1, 0), count: 9))) == "step 'a' has 9 rate_limits, over the limit of 8")
        #expect(refusal(limited([("api:{$.account}", 100, 60, 2), ("", 1, 1, 1)])) == nil)
    }

    @Test func refusesABadTaskConcurrencyLimitNamingTheField() {
        var limited = template([step("a")])
        limited.concurrency = .with { $0.key = "customer:{$.id"; $0.maxRunning = 2 }
        #expect(refusal(limited) == "template 'order' concurrency key: a '{' with no '}' after it; write a path as {$.name}")
        limited.concurrency = .with { $0.key = "customer:{$.id}"; $0.maxRunning = 0 }
        #expect(refusal(limited) == "template 'order' concurrency max_running is 0; it must be 1 to 100000")
        limited.concurrency = .with { $0.key = ""; $0.maxRunning = 3 }
        #expect(refusal(limited) == nil, "an empty key is one key for the template")
    }

    @Test func refusesAnInvalidSchemaAndCompilesAValidOne() throws {
        #expect(refusal(template([step("a")], schema: #"{"type": 5}"#))?.contains("context_schema_json") == true)
        let validated = try TemplateValidator.validate(template([step("a")], schema: #"{"type": "object"}"#))
        #expect(validated.schema != nil)
    }
}
