import Foundation

/// The key of a concurrency or rate limit as a template writes it: text with `{$.path}` parts
/// that a task's context fills in ("customer:{$.customer_id}").
struct LimitKey: Sendable, Equatable {
    enum Part: Sendable, Equatable {
        case text(String)
        /// Names from the context's top, e.g. ["customer", "id"] for `{$.customer.id}`.
        case path([String])
    }

    let parts: [Part]

    /// Parses the key; the error says what is wrong with it, for the template's author.
    init(parsing key: String) throws(EngineError) {
        var parts: [Part] = []
        var rest = Substring(key)
        while let open = rest.firstIndex(where: { $0 == "{" || $0 == "}" }) {
            guard rest[open] == "{" else { throw .invalidArgument("a '}' with no '{' before it; write a path as {$.name}") }
            if open > rest.startIndex { parts.append(.text(String(rest[..<open]))) }
            let inside = rest[rest.index(after: open)...]
            guard let close = inside.firstIndex(of: "}") else { throw .invalidArgument("a '{' with no '}' after it; write a path as {$.name}") }
            let path = inside[..<close]
            guard path.hasPrefix("$."), !path.contains("{") else {
                throw .invalidArgument("\(InputCheck.quoted("{" + path + "}")) is not a path of the context; write one as {$.name} or {$.name.inner}")
            }
            let names = path.dropFirst(2).split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            guard !names.contains(where: \.isEmpty) else {
                throw .invalidArgument("\(InputCheck.quoted("{" + path + "}")) has an empty name; write a path as {$.name} or {$.name.inner}")
            }
            parts.append(.path(names))
            rest = inside[inside.index(after: close)...]
        }
        if !rest.isEmpty { parts.append(.text(String(rest))) }
        self.parts = parts
    }

    /// The key of one task: each path replaced by the context's value there. A path the
    /// context lacks, or that holds an object, array or null, is an error naming it and the
    /// `kind` of key ("concurrency key").
    func rendered(for context: JSONValue, kind: String) throws(EngineError) -> String {
        var key = ""
        for part in parts {
            switch part {
            case .text(let text):
                key += text
            case .path(let names):
                var value = context
                for name in names {
                    guard case .object(let fields) = value, let inner = fields[name] else {
                        throw .invalidArgument("the context has no $.\(names.joined(separator: ".")), which the \(kind) needs")
                    }
                    value = inner
                }
                switch value {
                case .string(let text): key += text
                case .bool(let flag): key += flag ? "true" : "false"
                case .number(let number):
                    key += number.rounded() == number && abs(number) < 9e15 ? String(Int64(number)) : String(number)
                default:
                    throw .invalidArgument(
                        "$.\(names.joined(separator: ".")) of the context is \(value.typeName == "null" ? "null" : "an \(value.typeName)"); a \(kind) takes a string, number or boolean")
                }
            }
        }
        return key
    }
}
