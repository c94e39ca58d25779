/// The text form of a one-dimensional Postgres array (`{"a","b",NULL}`), to pass many rows'
/// values of one column as a single parameter and `unnest` them in SQL. Every text element is
/// quoted, so any text, including one that is itself an array literal, comes back as given.
public enum PostgresArrayLiteral {
    public static func of(_ elements: [String?]) -> String {
        var literal = Literal(capacity: elements.reduce(2) { $0 + ($1?.utf8.count ?? 4) + 3 })
        for element in elements {
            if let element {
                literal.appendQuoted(element)
            } else {
                literal.appendBare("NULL")
            }
        }
        return literal.finish()
    }

    public static func of(_ elements: [String]) -> String {
        var literal = Literal(capacity: elements.reduce(2) { $0 + $1.utf8.count + 3 })
        for element in elements { literal.appendQuoted(element) }
        return literal.finish()
    }

    public static func of(_ elements: [Int]) -> String {
        var literal = Literal(capacity: 2 + elements.count * 4)
        for element in elements { literal.appendBare(String(element)) }
        return literal.finish()
    }

    public static func of(_ elements: [Int32]) -> String {
        of(elements.map(Int.init))
    }

    public static func of(_ elements: [Double]) -> String {
        var literal = Literal(capacity: 2 + elements.count * 8)
        for element in elements { literal.appendBare(String(element)) }
        return literal.finish()
    }

    public static func of(_ elements: [Bool]) -> String {
        var literal = Literal(capacity: 2 + elements.count * 2)
        for element in elements { literal.appendBare(element ? "t" : "f") }
        return literal.finish()
    }

    /// The bytes of a literal as its elements are added.
    private struct Literal {
        private var bytes: [UInt8]

        init(capacity: Int) {
            bytes = []
            bytes.reserveCapacity(capacity)
            bytes.append(UInt8(ascii: "{"))
        }

        /// Numbers, booleans and NULL need no quotes.
        mutating func appendBare(_ text: String) {
            separate()
            bytes.append(contentsOf: text.utf8)
        }

        mutating func appendQuoted(_ text: String) {
            separate()
            bytes.append(UInt8(ascii: "\""))
            for byte in text.utf8 {
                if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { bytes.append(UInt8(ascii: "\\")) }
                bytes.append(byte)
            }
            bytes.append(UInt8(ascii: "\""))
        }

        private mutating func separate() {
            if bytes.count > 1 { bytes.append(UInt8(ascii: ",")) }
        }

        consuming func finish() -> String {
            bytes.append(UInt8(ascii: "}"))
            return String(decoding: bytes, as: UTF8.self)
        }
    }
}
