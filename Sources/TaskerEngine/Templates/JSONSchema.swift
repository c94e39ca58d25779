import Foundation

/// The subset of JSON Schema a template's `context_schema_json` may use: type, properties,
/// required, additionalProperties (boolean), enum, const, items, minItems/maxItems,
/// minimum/maximum (and the exclusive forms), minLength/maxLength and pattern. A schema using
/// anything it cannot check is refused at registration rather than half-enforced.
public struct JSONSchema: Sendable {
    /// Why a document fails: the path of the failing value (`$.items[2].sku`) and the rule.
    public struct Violation: Equatable, Sendable, CustomStringConvertible {
        public let path: String
        public let message: String
        public var description: String { "\(path): \(message)" }
    }

    public struct InvalidSchema: Error, Equatable, CustomStringConvertible {
        public let path: String
        public let message: String
        public var description: String { "context_schema_json is not a valid schema at \(path): \(message)" }
    }

    private indirect enum Node: Sendable {
        case node(Rules)
    }

    private struct Rules: Sendable {
        var types: Set<String>?
        var properties: [String: Node] = [:]
        var required: [String] = []
        var additionalProperties = true
        var enumeration: [JSONValue]?
        var constant: JSONValue?
        var items: Node?
        var minItems: Int?
        var maxItems: Int?
        var minimum: Double?
        var maximum: Double?
        var exclusiveMinimum: Double?
        var exclusiveMaximum: Double?
        var minLength: Int?
        var maxLength: Int?
        var pattern: SchemaPattern?
    }

    private let root: Node
    /// Whether any rule is a pattern: checking such a schema can take a while.
    public let hasPatterns: Bool

    /// Compiles schema text; throws `InvalidSchema` naming what is wrong.
    public init(text: String) throws {
        guard let value = JSONValue(parsing: text) else {
            throw InvalidSchema(path: "$", message: "not JSON")
        }
        var patterns = false
        root = try Self.compile(value, path: "$", patterns: &patterns)
        hasPatterns = patterns
    }

    private static let annotations: Set<String> = ["$schema", "$id", "title", "description", "default", "examples", "$comment"]
    private static let knownTypes: Set<String> = ["null", "boolean", "integer", "number", "string", "array", "object"]

    private static func compile(_ value: JSONValue, path: String, patterns: inout Bool) throws -> Node {
        guard case .object(let fields) = value else {
            if case .bool(true) = value { return .node(Rules()) }
            throw InvalidSchema(path: path, message: "a schema must be an object")
        }
        var rules = Rules()
        for (key, field) in fields.sorted(by: { $0.key < $1.key }) {
            let at = "\(path).\(key)"
            switch (key, field) {
            case ("type", .string(let name)):
                guard knownTypes.contains(name) else { throw InvalidSchema(path: at, message: "unknown type '\(name)'") }
                rules.types = [name]
            case ("type", .array(let names)):
                var types = Set<String>()
                for case .string(let name) in names {
                    guard knownTypes.contains(name) else { throw InvalidSchema(path: at, message: "unknown type '\(name)'") }
                    types.insert(name)
                }
                guard types.count == names.count, !types.isEmpty else { throw InvalidSchema(path: at, message: "type must name JSON types") }
                rules.types = types
            case ("properties", .object(let properties)):
                for (name, schema) in properties {
                    rules.properties[name] = try compile(schema, path: "\(at).\(name)", patterns: &patterns)
                }
            case ("required", .array(let names)):
                rules.required = try names.map { name in
                    guard case .string(let text) = name else { throw InvalidSchema(path: at, message: "required must list property names") }
                    return text
                }
            case ("additionalProperties", .bool(let allowed)):
                rules.additionalProperties = allowed
            case ("enum", .array(let values)):
                guard !values.isEmpty else { throw InvalidSchema(path: at, message: "enum must not be empty") }
                rules.enumeration = values
            case ("const", let constant):
                rules.constant = constant
            case ("items", let schema):
                rules.items = try compile(schema, path: at, patterns: &patterns)
            case ("minItems", .number(let n)): rules.minItems = try count(n, at)
            case ("maxItems", .number(let n)): rules.maxItems = try count(n, at)
            case ("minLength", .number(let n)): rules.minLength = try count(n, at)
            case ("maxLength", .number(let n)): rules.maxLength = try count(n, at)
            case ("minimum", .number(let n)): rules.minimum = n
            case ("maximum", .number(let n)): rules.maximum = n
            case ("exclusiveMinimum", .number(let n)): rules.exclusiveMinimum = n
            case ("exclusiveMaximum", .number(let n)): rules.exclusiveMaximum = n
            case ("pattern", .string(let pattern)):
                do {
                    rules.pattern = try SchemaPattern(pattern)
                    patterns = true
                } catch {
                    throw InvalidSchema(path: at, message: "'\(pattern.prefix(100))' is not a valid regular expression: \(error)")
                }
            default:
                if annotations.contains(key) { continue }
                throw InvalidSchema(path: at, message: "'\(key)' is not supported here (or has the wrong kind of value)")
            }
        }
        return .node(rules)
    }

    /// A count (minLength, maxItems, …): a whole number from 0 to 2^53, so that 1e300 is a
    /// refusal rather than a trap converting it.
    private static func count(_ number: Double, _ path: String) throws -> Int {
        guard number >= 0, number <= 9_007_199_254_740_992, let count = Int(exactly: number) else {
            throw InvalidSchema(path: path, message: "must be a non-negative integer")
        }
        return count
    }

    /// Every rule the document breaks, in a stable order; empty when it conforms.
    public func violations(of document: JSONValue) -> [Violation] {
        var found: [Violation] = []
        Self.check(document, against: root, path: "$", into: &found)
        return found
    }

    private static func check(_ value: JSONValue, against node: Node, path: String, into found: inout [Violation]) {
        guard case .node(let rules) = node else { return }
        if let types = rules.types {
            let actual = value.typeName
            let matches = types.contains(actual) || (actual == "integer" && types.contains("number"))
            if !matches {
                found.append(Violation(path: path, message: "expected \(types.sorted().joined(separator: " or ")), got \(actual)"))
                return
            }
        }
        if let enumeration = rules.enumeration, !enumeration.contains(value) {
            found.append(Violation(path: path, message: "must be one of \(enumeration.map(describe).joined(separator: ", "))"))
        }
        if let constant = rules.constant, constant != value {
            found.append(Violation(path: path, message: "must be \(describe(constant))"))
        }
        switch value {
        case .object(let fields):
            for name in rules.required where fields[name] == nil {
                found.append(Violation(path: "\(path).\(name)", message: "is required"))
            }
            for (name, field) in fields.sorted(by: { $0.key < $1.key }) {
                if let schema = rules.properties[name] {
                    check(field, against: schema, path: "\(path).\(name)", into: &found)
                } else if !rules.additionalProperties {
                    found.append(Violation(path: "\(path).\(name)", message: "is not an allowed property"))
                }
            }
        case .array(let elements):
            if let minItems = rules.minItems, elements.count < minItems {
                found.append(Violation(path: path, message: "must have at least \(InputCheck.counted(minItems, "item")), has \(elements.count)"))
            }
            if let maxItems = rules.maxItems, elements.count > maxItems {
                found.append(Violation(path: path, message: "must have at most \(InputCheck.counted(maxItems, "item")), has \(elements.count)"))
            }
            if let items = rules.items {
                for (index, element) in elements.enumerated() {
                    check(element, against: items, path: "\(path)[\(index)]", into: &found)
                }
            }
        case .number(let number):
            if let minimum = rules.minimum, number < minimum {
                found.append(Violation(path: path, message: "must be at least \(format(minimum)), is \(format(number))"))
            }
            if let maximum = rules.maximum, number > maximum {
                found.append(Violation(path: path, message: "must be at most \(format(maximum)), is \(format(number))"))
            }
            if let bound = rules.exclusiveMinimum, number <= bound {
                found.append(Violation(path: path, message: "must be more than \(format(bound)), is \(format(number))"))
            }
            if let bound = rules.exclusiveMaximum, number >= bound {
                found.append(Violation(path: path, message: "must be less than \(format(bound)), is \(format(number))"))
            }
        case .string(let text):
            let length = text.unicodeScalars.count
            if let minLength = rules.minLength, length < minLength {
                found.append(Violation(path: path, message: "must be at least \(InputCheck.counted(minLength, "character")) long"))
            }
            if let maxLength = rules.maxLength, length > maxLength {
                found.append(Violation(path: path, message: "must be at most \(InputCheck.counted(maxLength, "character")) long"))
            }
            switch rules.pattern?.match(text) {
            case .unmatched?:
                found.append(Violation(path: path, message: "must match the pattern \(rules.pattern!.source)"))
            case .tooCostly?:
                found.append(Violation(path: path, message: "is too costly to check against the pattern \(rules.pattern!.source) (\(length) characters)"))
            case .matched?, nil:
                break
            }
        default:
            break
        }
    }

    private static func describe(_ value: JSONValue) -> String {
        switch value {
        case .null: "null"
        case .bool(let flag): String(flag)
        case .number(let number): format(number)
        case .string(let text): "\"\(text)\""
        case .array: "an array"
        case .object: "an object"
        }
    }

    private static func format(_ number: Double) -> String {
        number.rounded() == number && abs(number) < 1e15 ? String(Int64(number)) : String(number)
    }
}
