import Foundation
import SwiftProtobuf
import TaskerProto
import Testing

@testable import TaskerEngine

@Suite struct StoredJSONTests {
    /// jsonb hands numbers back as exact decimals in full: these are the forms it prints.
    static let printed: [(String, Double)] = [
        ("1" + String(repeating: "0", count: 300), 1e300),
        ("0." + String(repeating: "0", count: 323) + "5", 5e-324),
        ("-0.000000000000000000000000000001", -1e-30),
        ("17976931348623157" + String(repeating: "0", count: 292), 1.7976931348623157e308),
        ("0.3333333333333333", 1.0 / 3),
        ("9007199254740993", 9007199254740992),
        ("1e+300", 1e300),
    ]

    @Test(arguments: printed)
    func numbersComeBackAsTheDoubleStored(text: String, expected: Double) throws {
        let object = try StoredJSON.object(#"{"n": \#(text)}"#)
        #expect(object.fields["n"]?.numberValue == expected)
    }

    @Test func everyKindOfValueAndEscapeRoundTrips() throws {
        var original = Google_Protobuf_Struct()
        original.fields = [
            "text": .init(stringValue: "tab\t, quote \", backslash \\, newline \n, é, 😀, \u{1}"),
            "list": .init(listValue: .init(values: [.init(boolValue: true), .init(nilLiteral: ()), .init(numberValue: -2.5)])),
            "nested": .init(structValue: .init(fields: ["empty": .init(structValue: .init()), "none": .init(listValue: .init())])),
            "": .init(stringValue: ""),
        ]
        #expect(try StoredJSON.object(try original.jsonString()) == original)
        // What Postgres writes: spaces after separators, \u escapes with surrogate pairs.
        let postgres = #"{"a": [1, 2], "b": {"c": "\ud83d\ude00 \u00e9\/"}, "d": false}"#
        let read = try StoredJSON.object(postgres)
        #expect(read.fields["b"]?.structValue.fields["c"]?.stringValue == "😀 é/")
        #expect(read.fields["a"]?.listValue.values.map(\.numberValue) == [1, 2])
    }

    @Test(arguments: [#"{"a": }"#, #"{"a" 1}"#, #"{"a": 1"#, #"[1, 2]"#, #"{"a": "\ud83d"}"#, #"{"a": 1} x"#, #"{"a": tru}"#, #"{"a": 1e}"#])
    func malformedTextIsAnErrorNeverAnEmptyObject(text: String) {
        #expect(throws: StoredJSON.Malformed.self) { try StoredJSON.object(text) }
    }
}

@Suite struct InputCheckTests {
    @Test func quotedShowsAShortPrefixWithControlsEscaped() {
        #expect(InputCheck.quoted("abc") == "'abc'")
        #expect(InputCheck.quoted("a\u{0}b") == "'a\\0b'")
        let long = InputCheck.quoted(String(repeating: "x", count: 3_000_000))
        #expect(long.count < 80 && long.hasSuffix("…' (3000000 bytes)"))
    }

    @Test func textIsRefusedForSizeNulAndBlankness() {
        #expect(throws: EngineError.invalidArgument("name is 5 bytes, over the limit of 4: 'abcde'")) {
            try InputCheck.text("abcde", "name", limit: 4)
        }
        #expect(throws: EngineError.invalidArgument("name contains a NUL byte (at byte 2), which cannot be stored: 'ab\\0c'")) {
            try InputCheck.text("ab\u{0}c", "name", limit: 10)
        }
        #expect(throws: EngineError.invalidArgument("tags[1] is empty")) {
            try InputCheck.texts(["a", " "], "tags", limit: 10, count: 5, required: true)
        }
        #expect(throws: Never.self) { try InputCheck.text("é", "name", limit: 2) }
    }

    @Test func structsAreCheckedThroughoutWithTheirPaths() throws {
        func refusal(_ json: String) -> String? {
            do {
                _ = try InputCheck.json(try Google_Protobuf_Struct(jsonString: json), "context", limit: 1000)
                return nil
            } catch {
                return "\(error)"
            }
        }
        #expect(refusal(#"{"a": {"b": [1, "x\u0000"]}}"#)?.hasPrefix("context.a.b[1] contains a NUL byte") == true)
        #expect(refusal(#"{"odd key": {"k\u0000": 1}}"#)?.hasPrefix("context['odd key'] has a key with a NUL byte") == true)
        #expect(refusal(#"{"big": "\#(String(repeating: "x", count: 2000))"}"#)?.contains("over the limit of 1000") == true)
        var deep = Google_Protobuf_Value(numberValue: 1)
        for _ in 0..<InputLimits.structDepth { deep = .init(structValue: .init(fields: ["a": deep])) }
        let tooDeep = Google_Protobuf_Struct(fields: ["a": deep])
        #expect(throws: EngineError.self) { try InputCheck.json(tooDeep, "context", limit: 1 << 20) }
        let deepest = deep.structValue
        #expect(throws: Never.self) { try InputCheck.json(deepest, "context", limit: 1 << 20) }
        var nan = Google_Protobuf_Struct()
        nan.fields["x"] = .init(numberValue: .nan)
        #expect(throws: EngineError.invalidArgument("context.x is nan, which JSON cannot carry; send a finite number (or a string)")) {
            try InputCheck.json(nan, "context", limit: 1000)
        }
    }

    @Test func aLongFailureMessageIsCutVisiblyOnACharacter() throws {
        let message = String(repeating: "é", count: 3000)
        let checked = try TaskEngine.checked(.failure(message: message, retryable: true, backoffRequestSeconds: -5))
        guard case .failure(let stored, _, let backoff) = checked.outcome else { Issue.record("not a failure"); return }
        #expect(stored.utf8.count <= InputLimits.reasonBytes)
        #expect(stored.hasPrefix("éé") && stored.hasSuffix("[cut: 6000 bytes in all, 4096 kept]"))
        #expect(backoff == 0)
        #expect(throws: EngineError.self) { try TaskEngine.checked(.failure(message: "a\u{0}", retryable: true, backoffRequestSeconds: 0)) }
    }
}
