import Foundation
import SwiftProtobuf
import TaskerEngine

/// Checks a JSON object (as parsed from YAML or JSON) against a message's descriptor before it
/// is decoded, so that every problem is reported at once and by its place. SwiftProtobuf's
/// decoder stops at the first and names neither the field nor where it is (`malformedNumber`,
/// `unknownField("dependson")`).
public struct ProtoJSONCheck: Sendable {
    /// One thing wrong, at `path` (e.g. `["step 'pay' (steps[2])", "backoff"]`).
    public struct Problem: CustomStringConvertible, Sendable {
        public let path: [String]
        public let message: String
        public var description: String { path.isEmpty ? message : "\(path.joined(separator: ", ")): \(message)" }
    }

    /// Names an element of a repeated message field, from the field's name, its index and the
    /// element; the default is `field[index]`.
    public typealias ElementLabel = (_ field: String, _ index: Int, _ element: [String: Any]) -> String

    private let messages: [String: Google_Protobuf_DescriptorProto]

    /// The served protos' messages.
    public static let served = ProtoJSONCheck(ServedProtos.descriptorSet)

    init(_ set: Google_Protobuf_FileDescriptorSet) {
        var messages: [String: Google_Protobuf_DescriptorProto] = [:]
        func add(_ message: Google_Protobuf_DescriptorProto, in scope: String) {
            let name = "\(scope).\(message.name)"
            messages[name] = message
            for nested in message.nestedType { add(nested, in: name) }
        }
        for file in set.file {
            for message in file.messageType { add(message, in: file.package.isEmpty ? "" : ".\(file.package)") }
        }
        self.messages = messages
    }

    /// What is wrong with `object` as the message `fullName` (`.tasker.v1.TaskTemplate`).
    public func problems(in object: [String: Any], as fullName: String, label: ElementLabel? = nil) -> [Problem] {
        guard let message = messages[fullName] else { return [Problem(path: [], message: "no message \(fullName)")] }
        var found: [Problem] = []
        check(object, message, at: [], label: label ?? { field, index, _ in "\(field)[\(index)]" }, into: &found)
        return found
    }

    private func check(_ object: [String: Any], _ message: Google_Protobuf_DescriptorProto, at path: [String],
                       label: ElementLabel, into found: inout [Problem]) {
        for key in object.keys.sorted() {
            guard let field = message.field.first(where: { $0.name == key || $0.jsonName == key }) else {
                found.append(Problem(path: path, message: "unknown field \(InputCheck.quoted(key))\(Self.suggestion(for: key, among: message.field.map(\.name)))"))
                continue
            }
            let value = object[key]!
            if value is NSNull { continue }
            if field.label == .repeated {
                guard let list = value as? [Any] else {
                    found.append(Problem(path: path + [field.name], message: "\(Self.shown(value)) is not a list"))
                    continue
                }
                for (index, element) in list.enumerated() {
                    let place = element is [String: Any] && field.type == .message
                        ? label(field.name, index, element as! [String: Any]) : "\(field.name)[\(index)]"
                    checkValue(element, field, at: path + [place], label: label, into: &found)
                }
            } else {
                checkValue(value, field, at: path + [field.name], label: label, into: &found)
            }
        }
    }

    private func checkValue(_ value: Any, _ field: Google_Protobuf_FieldDescriptorProto, at path: [String],
                            label: ElementLabel, into found: inout [Problem]) {
        func wrong(_ expected: String) {
            found.append(Problem(path: path, message: "\(Self.shown(value)) is not \(expected)"))
        }
        switch field.type {
        case .string, .bytes:
            if !(value is String) { wrong(value is Date ? "a string (YAML reads it as a date: quote it)" : "a string (quote it)") }
        case .bool:
            if !(value is Bool) { wrong("true or false") }
        case .double, .float:
            if !(value is Int || value is Double) { wrong("a number") }
        case .int32, .sint32, .sfixed32, .int64, .sint64, .sfixed64, .uint32, .fixed32, .uint64, .fixed64:
            let whole: Double? = (value as? Int).map(Double.init) ?? (value as? Double).flatMap { $0 == $0.rounded() ? $0 : nil }
            guard let whole else { return wrong("a whole number") }
            let unsigned = [.uint32, .fixed32, .uint64, .fixed64].contains(field.type)
            let narrow = [.int32, .sint32, .sfixed32, .uint32, .fixed32].contains(field.type)
            let low: Double = unsigned ? 0 : narrow ? -2_147_483_648 : -9.223372036854775808e18
            let high: Double = narrow ? (unsigned ? 4_294_967_295 : 2_147_483_647) : (unsigned ? 1.8446744073709551615e19 : 9.223372036854775807e18)
            if whole < low || whole > high { wrong("a whole number from \(Int(low)) to \(UInt(high))") }
        case .enum:
            if !(value is String || value is Int) { wrong("one of the enum's names") }
        case .message:
            // A well-known type (Struct, Timestamp) has a JSON form of its own, which its decoder checks.
            guard !field.typeName.hasPrefix(".google.protobuf."), let nested = messages[field.typeName] else { return }
            guard let object = value as? [String: Any] else { return wrong("an object (name: value, ...)") }
            check(object, nested, at: path, label: label, into: &found)
        default:
            break
        }
    }

    /// A short, quoted prefix of a value, as a message may show it.
    static func shown(_ value: Any) -> String {
        switch value {
        case let text as String: InputCheck.quoted(text)
        case is [Any]: "a list"
        case is [String: Any]: "an object"
        case let date as Date: "'\(ISO8601DateFormatter.string(from: date, timeZone: .gmt, formatOptions: [.withFullDate]))'"
        default: InputCheck.quoted(String(describing: value))
        }
    }

    /// " (did you mean 'depends_on'?)" when a known name is close to `key`; otherwise the
    /// names there are.
    static func suggestion(for key: String, among names: [String]) -> String {
        func squeezed(_ name: String) -> [Character] { Array(name.lowercased().filter { $0 != "_" && $0 != "-" }) }
        let wanted = squeezed(key)
        let closest = names.map { ($0, editDistance(wanted, squeezed($0))) }.min { $0.1 < $1.1 }
        if let closest, closest.1 <= max(1, wanted.count / 4) { return " (did you mean '\(closest.0)'?)" }
        return " (the fields are \(names.joined(separator: ", ")))"
    }

    static func editDistance(_ a: [Character], _ b: [Character]) -> Int {
        guard !a.isEmpty else { return b.count }
        var previous = Array(0...b.count)
        for (i, x) in a.enumerated() {
            var current = [i + 1]
            for (j, y) in b.enumerated() {
                current.append(min(previous[j + 1] + 1, current[j] + 1, previous[j] + (x == y ? 0 : 1)))
            }
            previous = current
        }
        return previous[b.count]
    }
}
