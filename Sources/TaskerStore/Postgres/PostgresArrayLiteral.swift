/// The text form of a one-dimensional Postgres array (`{"a","b",NULL}`), to pass many rows'
/// values of one column as a single parameter and `unnest` them in SQL. Every element is
/// quoted, so any text, including one that is itself an array literal, comes back as given.
public enum PostgresArrayLiteral {
    public static func of<Elements: Sequence>(_ elements: Elements) -> String where Elements.Element == String? {
        var literal = "{"
        var first = true
        for element in elements {
            if !first { literal.append(",") }
            first = false
            guard let element else {
                literal.append("NULL")
                continue
            }
            literal.append("\"")
            if element.utf8.contains(where: { $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
                for character in element.unicodeScalars {
                    if character == "\"" || character == "\\" { literal.append("\\") }
                    literal.unicodeScalars.append(character)
                }
            } else {
                literal.append(element)
            }
            literal.append("\"")
        }
        literal.append("}")
        return literal
    }

    public static func of<Elements: Sequence>(_ elements: Elements) -> String where Elements.Element == String {
        of(elements.lazy.map { Optional($0) })
    }

    public static func of<Elements: Sequence>(_ elements: Elements) -> String where Elements.Element: BinaryInteger {
        of(elements.lazy.map { String($0) })
    }

    public static func of(_ elements: [Double]) -> String {
        of(elements.lazy.map { String($0) })
    }

    public static func of(_ elements: [Bool]) -> String {
        of(elements.lazy.map { $0 ? "t" : "f" })
    }
}
