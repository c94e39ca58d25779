import Foundation
import SwiftProtobuf
import TaskerProto

/// The checks every value a caller or worker sends passes before it reaches Postgres: sizes
/// (InputLimits), text Postgres cannot hold, and numbers JSON cannot carry. Each refusal names
/// the field (and, inside a Struct, the path) and shows at most a short prefix of the value.
///
/// NUL bytes are refused everywhere: Postgres text and jsonb cannot hold them, and libpq
/// would cut a value at one, so that two different names or keys would be taken for one.
public enum InputCheck {
    /// How much of a caller's value a message shows.
    static let shownCharacters = 40

    /// `'text'` when short, else its first characters, an ellipsis and the whole size; control
    /// characters as escapes. Safe for any input in any message.
    /// `1 item`, `2 items`: a count as a message says it.
    public static func counted(_ count: Int, _ noun: String) -> String {
        "\(count) \(noun)\(count == 1 ? "" : "s")"
    }

    public static func quoted(_ text: String) -> String {
        var shown = ""
        var count = 0
        for scalar in text.unicodeScalars {
            if count == shownCharacters {
                return "'\(shown)…' (\(text.utf8.count) bytes)"
            }
            shown += scalar.properties.generalCategory == .control ? scalar.escaped(asASCII: true) : String(scalar)
            count += 1
        }
        return "'\(shown)'"
    }

    /// A string field: no longer than `limit` bytes, no NUL, and not blank when `required`.
    public static func text(_ value: String, _ field: String, limit: Int, required: Bool = false) throws(EngineError) {
        let size = value.utf8.count
        if size > limit {
            throw .invalidArgument("\(field) is \(size) bytes, over the limit of \(limit): \(quoted(value))")
        }
        if let at = nulOffset(value) {
            throw .invalidArgument("\(field) contains a NUL byte (at byte \(at)), which cannot be stored: \(quoted(value))")
        }
        if required, value.allSatisfy(\.isWhitespace) {
            throw .invalidArgument("\(field) is empty")
        }
    }

    /// Each of a list of strings as `text`, and no more than `count` of them.
    public static func texts(_ values: [String], _ field: String, limit: Int, count: Int, required: Bool = false) throws(EngineError) {
        if values.count > count {
            throw .invalidArgument("\(field) has \(values.count) entries, over the limit of \(count)")
        }
        for (index, value) in values.enumerated() {
            try text(value, "\(field)[\(index)]", limit: limit, required: required)
        }
    }

    /// A Struct to be stored: checked throughout, then as JSON no larger than `limit` bytes.
    /// Returns that JSON.
    public static func json(_ value: Google_Protobuf_Struct, _ field: String, limit: Int) throws(EngineError) -> String {
        var walk = StructWalk(field: field)
        try walk.check(value, depth: 1)
        // What the walk counted is less than the JSON will be: past the limit already, the
        // value is refused without the cost of encoding it.
        if walk.least > limit {
            throw .invalidArgument("\(field) is over \(walk.least) bytes as JSON, over the limit of \(limit)")
        }
        let json = try Rows.json(value)
        if json.utf8.count > limit {
            throw .invalidArgument("\(field) is \(json.utf8.count) bytes as JSON, over the limit of \(limit)")
        }
        return json
    }

    /// A worker's registration, before its templates (which registerTemplate checks).
    public static func registration(_ registration: Tasker_V1_RegisterWorker) throws(EngineError) {
        try text(registration.name, "RegisterWorker name", limit: InputLimits.labelBytes)
        try texts(registration.handlers, "RegisterWorker handlers", limit: InputLimits.nameBytes, count: InputLimits.handlersPerWorker)
        guard (0...InputLimits.slotsPerWorker).contains(registration.slots) else {
            throw .invalidArgument("RegisterWorker slots is \(registration.slots); it must be between 0 (the default, 1) and \(InputLimits.slotsPerWorker)")
        }
    }

    /// A number a request carries that must be finite and within `range`.
    /// A task's start: a real time, at most a year ahead (a past one starts the task at once).
    public static func startAt(_ at: Google_Protobuf_Timestamp) throws(EngineError) {
        guard (0..<1_000_000_000).contains(at.nanos), (0...253_402_300_799).contains(at.seconds) else {
            throw .invalidArgument("start_at is not a valid time (seconds \(at.seconds), nanos \(at.nanos))")
        }
        let ahead = Double(at.seconds) - Date().timeIntervalSince1970
        guard ahead <= InputLimits.startAheadSeconds else {
            throw .invalidArgument("start_at is \(Int((ahead / 86_400).rounded())) days ahead; a task may start at most 366 days ahead")
        }
    }

    public static func number(_ value: Double, _ field: String, _ range: ClosedRange<Double>) throws(EngineError) {
        guard value.isFinite else { throw .invalidArgument("\(field) is \(value); it must be a finite number") }
        guard range.contains(value) else {
            throw .invalidArgument("\(field) is \(value); it must be between \(range.lowerBound) and \(range.upperBound)")
        }
    }

    /// One pass over a Struct on a submit or result path. The path to where it is is kept as
    /// components and spelled out only for a refusal, so a value that passes costs no string
    /// building; `least` counts bytes the JSON will certainly hold: each key and string, quoted.
    private struct StructWalk {
        enum Component {
            case key(String)
            case index(Int)
        }

        let field: String
        var components: [Component] = []
        var least = 0

        init(field: String) {
            self.field = field
        }

        var path: String {
            components.reduce(into: field) { path, component in
                switch component {
                case .key(let key): path += InputCheck.member(key)
                case .index(let index): path += "[\(index)]"
                }
            }
        }

        mutating func check(_ object: Google_Protobuf_Struct, depth: Int) throws(EngineError) {
            try depthCheck(depth)
            least += 2
            for (key, value) in object.fields {
                least += key.utf8.count + 3
                if key.utf8.count > InputLimits.labelBytes {
                    throw .invalidArgument("\(path) has a key of \(key.utf8.count) bytes, over the limit of \(InputLimits.labelBytes): \(quoted(key))")
                }
                if nulOffset(key) != nil {
                    throw .invalidArgument("\(path) has a key with a NUL byte, which cannot be stored: \(quoted(key))")
                }
                components.append(.key(key))
                try check(value, depth: depth)
                components.removeLast()
            }
        }

        mutating func check(_ value: Google_Protobuf_Value, depth: Int) throws(EngineError) {
            switch value.kind {
            case .numberValue(let number):
                least += 1
                if !number.isFinite {
                    throw .invalidArgument("\(path) is \(number), which JSON cannot carry; send a finite number (or a string)")
                }
            case .stringValue(let text):
                least += text.utf8.count + 2
                if let at = nulOffset(text) {
                    throw .invalidArgument("\(path) contains a NUL byte (at byte \(at)), which cannot be stored: \(quoted(text))")
                }
            case .structValue(let object):
                try check(object, depth: depth + 1)
            case .listValue(let list):
                try depthCheck(depth + 1)
                least += 2
                for (index, element) in list.values.enumerated() {
                    components.append(.index(index))
                    try check(element, depth: depth + 1)
                    components.removeLast()
                }
            case .boolValue, .nullValue, nil:
                least += 1
            }
        }

        private func depthCheck(_ depth: Int) throws(EngineError) {
            if depth > InputLimits.structDepth {
                throw .invalidArgument("\(path) is nested \(depth) deep, over the limit of \(InputLimits.structDepth)")
            }
        }
    }

    /// `.key` for a plain key, else `['key']`.
    private static func member(_ key: String) -> String {
        let plain = !key.isEmpty && key.utf8.count <= shownCharacters
            && key.unicodeScalars.allSatisfy { $0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_" || $0 == "-" }
        return plain ? ".\(key)" : "[\(quoted(key))]"
    }

    /// memchr over the string's bytes: a 3 MiB string is scanned in well under a millisecond,
    /// where stepping through its UTF-8 view takes far longer.
    static func nulOffset(_ text: String) -> Int? {
        var text = text
        return text.withUTF8 { bytes -> Int? in
            guard let base = bytes.baseAddress, let found = memchr(base, 0, bytes.count) else { return nil }
            return UnsafeRawPointer(base).distance(to: UnsafeRawPointer(found))
        }
    }
}
