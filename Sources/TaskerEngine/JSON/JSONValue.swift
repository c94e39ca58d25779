import SwiftProtobuf

/// A JSON document: the task context, step results and schemas are all JSON.
public indirect enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// Parses JSON text; nil when it is not JSON.
    public init?(parsing text: String) {
        guard let value = try? Google_Protobuf_Value(jsonString: text) else { return nil }
        self.init(value)
    }

    public init(_ value: Google_Protobuf_Value) {
        switch value.kind {
        case .nullValue, nil: self = .null
        case .boolValue(let flag): self = .bool(flag)
        case .numberValue(let number): self = .number(number)
        case .stringValue(let text): self = .string(text)
        case .listValue(let list): self = .array(list.values.map(JSONValue.init))
        case .structValue(let object): self = .object(object.fields.mapValues(JSONValue.init))
        }
    }

    public init(_ object: Google_Protobuf_Struct) {
        self = .object(object.fields.mapValues(JSONValue.init))
    }

    /// The JSON type name, as JSON Schema spells it.
    var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .number(let number): number.rounded() == number && abs(number) < 9e15 ? "integer" : "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }
}
