@testable import TaskerEngine

enum FuzzPattern {
    /// A pattern, then (after a 0xFF byte) a text: compiled and matched within the budget.
    static func run(_ input: UnsafeRawBufferPointer) {
        let (patternBytes, textBytes) = halves(input)
        guard let pattern = try? SchemaPattern(String(decoding: patternBytes, as: UTF8.self)) else { return }
        let text = String(decoding: textBytes, as: UTF8.self)
        let outcome = pattern.match(text)
        // Matching is a function of the pattern and the text.
        precondition(pattern.match(text) == outcome)
    }
}
