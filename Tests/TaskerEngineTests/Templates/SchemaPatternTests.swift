import Testing

@testable import TaskerEngine

@Suite struct SchemaPatternTests {
    /// (pattern, text, matches) as ECMA-262 has them; a match anywhere counts.
    static let cases: [(String, String, Bool)] = [
        ("abc", "xxabcxx", true), ("abc", "ab", false), ("^abc$", "abc", true), ("^abc$", "abcd", false),
        ("^$", "", true), ("a|b|c", "zzc", true), ("^(ab|cd)+$", "abcdab", true), ("^(ab|cd)+$", "abca", false),
        ("^a*$", "", true), ("^a+$", "", false), ("^a?b$", "b", true), ("^a{2}$", "aa", true), ("^a{2}$", "aaa", false),
        ("^a{2,}$", "aaaa", true), ("^a{2,3}$", "aaaa", false), ("^a{2,3}$", "aaa", true), ("^a{,2}$", "a{,2}", true),
        ("^[a-c]+$", "abcab", true), ("^[a-c]+$", "abd", false), ("^[^@]+@[^@]+$", "me@x.io", true), ("^[^@]+@[^@]+$", "a@b@c", false),
        ("^\\d{3}-\\d{4}$", "555-1234", true), ("^\\d+$", "12a", false), ("^\\w+$", "snake_case9", true), ("^\\W$", "-", true),
        ("^\\s*$", " \t\n", true), ("^\\S+$", "a b", false), ("^.$", "\n", false), ("^.$", "é", true), ("^.$", "😀", true),
        ("\\bcat\\b", "a cat!", true), ("\\bcat\\b", "concat", false), ("\\Bcat", "concat", true),
        ("^[\\d.-]+$", "1.5-2", true), ("^[-a]$", "-", true), ("^[a-]$", "-", true), ("^[]]$", "]", false),
        ("^[^]$", "x", true), ("^\\u00e9$", "é", true), ("^\\x41$", "A", true), ("^a\\.b$", "a.b", true), ("^a\\.b$", "axb", false),
        ("^(?:x|y)z$", "yz", true), ("^(?<year>\\d{4})$", "2026", true), ("^a+?$", "aaa", true), ("^(a|ab)(c|bcd)(d*)$", "abcd", true),
        ("^(a*)*$", "aaaa", true), ("^(a*)*b$", "aaaa", false), ("^(a+)+$", String(repeating: "a", count: 40) + "!", false),
        ("{", "{", true), ("a{x}", "a{x}", true),
    ]

    @Test(arguments: cases)
    func matchesAsECMAScriptDoes(pattern: String, text: String, expected: Bool) throws {
        let compiled = try SchemaPattern(pattern)
        #expect(compiled.match(text) == (expected ? .matched : .unmatched), "\(pattern) on \(text)")
    }

    @Test(arguments: [
        ("(", "missing ')' at character 2"), (")", "unmatched ')' at character 1"), ("a**", "nothing to repeat at character 3"),
        ("*a", "nothing to repeat at character 1"), ("(a)\\1", "back-references are not supported"),
        ("a(?=b)", "lookaround is not supported"), ("(?<!a)b", "lookaround is not supported"), ("[a", "missing ']'"),
        ("[z-a]", "out of order"), ("a{3,1}", "out of order"), ("\\q", "is not an escape"), ("a\\", "cannot end with"),
        ("(a{1000}){1000}", "over 20000 steps"), (String(repeating: "a", count: 1025), "over the limit of 1024"),
    ])
    func unsupportedOrInvalidPatternsAreRefusedWithTheReason(pattern: String, reason: String) {
        #expect(throws: SchemaPattern.Invalid.self) { try SchemaPattern(pattern) }
        do {
            _ = try SchemaPattern(pattern)
        } catch {
            #expect(error.reason.contains(reason), "\(error.reason)")
        }
    }

    /// Catastrophic for a backtracking engine; here each character costs at most the
    /// program's length, far inside the step budget.
    @Test func nestedQuantifiersOnALongTextAreAnsweredWithinTheBudget() throws {
        let pattern = try SchemaPattern("^(a+)+$")
        #expect(pattern.match(String(repeating: "a", count: 100_000) + "!") == .unmatched)
        #expect(pattern.match(String(repeating: "a", count: 100_000)) == .matched)
        // Unanchored, 500 live threads at every one of 200,000 positions: past the budget.
        let wide = try SchemaPattern("(" + Array(repeating: "a?", count: 500).joined() + ")x")
        #expect(wide.match(String(repeating: "a", count: 200_000)) == .tooCostly)
    }
}
