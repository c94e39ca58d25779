import Foundation
import SwiftProtobuf

/// Reads JSON as Postgres writes it back (`jsonb::text`) into protobuf Structs.
///
/// swift-protobuf's JSON decoder refuses some of what jsonb gives back for values it was
/// given: jsonb keeps numbers as exact decimals and prints them in full, so 1e300 comes back
/// as a 301-digit integer and 5e-324 as 324 decimal places, which that decoder will not take
/// as a double. Read with it, a whole context came back empty. This reader takes any JSON
/// number text through `strtod`, which returns the double nearest the exact decimal: the very
/// double that was stored, since it was written in its shortest round-trip form. It fails
/// only on text that is not JSON, which a reader of stored values reports, never hides.
public enum StoredJSON {
    public struct Malformed: Error, CustomStringConvertible {
        public let offset: Int
        public let expected: String
        public var description: String { "stored JSON is malformed at byte \(offset): expected \(expected)" }
    }

    /// The object `text` holds.
    public static func object(_ text: String) throws(Malformed) -> Google_Protobuf_Struct {
        let value = try self.value(text)
        guard case .structValue(let object)? = value.kind else { throw Malformed(offset: 0, expected: "an object") }
        return object
    }

    /// The value `text` holds.
    public static func value(_ text: String) throws(Malformed) -> Google_Protobuf_Value {
        var text = text
        let read = text.withUTF8 { bytes -> Result<Google_Protobuf_Value, Malformed> in
            var reader = Reader(bytes: bytes)
            return Result { () throws(Malformed) in
                let value = try reader.value(depth: 0)
                reader.skipSpace()
                guard reader.offset == bytes.count else { throw Malformed(offset: reader.offset, expected: "the end") }
                return value
            }
        }
        return try read.get()
    }

    private struct Reader {
        let bytes: UnsafeBufferPointer<UInt8>
        var offset = 0

        init(bytes: UnsafeBufferPointer<UInt8>) {
            self.bytes = bytes
        }

        /// Deeper than anything the engine accepts (InputLimits.structDepth); a bound all the same,
        /// so no text can exhaust the stack.
        static let depthLimit = 512

        mutating func skipSpace() {
            while offset < bytes.count, [0x20, 0x0A, 0x0D, 0x09].contains(bytes[offset]) { offset += 1 }
        }

        func fail(_ expected: String) -> Malformed { Malformed(offset: offset, expected: expected) }

        mutating func value(depth: Int) throws(Malformed) -> Google_Protobuf_Value {
            guard depth < Self.depthLimit else { throw fail("less nesting") }
            skipSpace()
            guard offset < bytes.count else { throw fail("a value") }
            switch bytes[offset] {
            case UInt8(ascii: "{"):
                return Google_Protobuf_Value(structValue: try object(depth: depth))
            case UInt8(ascii: "["):
                offset += 1
                var list = Google_Protobuf_ListValue()
                skipSpace()
                if offset < bytes.count, bytes[offset] == UInt8(ascii: "]") {
                    offset += 1
                    return Google_Protobuf_Value(listValue: list)
                }
                while true {
                    list.values.append(try value(depth: depth + 1))
                    skipSpace()
                    guard offset < bytes.count else { throw fail("',' or ']'") }
                    let next = bytes[offset]
                    offset += 1
                    if next == UInt8(ascii: "]") { return Google_Protobuf_Value(listValue: list) }
                    guard next == UInt8(ascii: ",") else { offset -= 1; throw fail("',' or ']'") }
                }
            case UInt8(ascii: "\""):
                return Google_Protobuf_Value(stringValue: try string())
            case UInt8(ascii: "t"):
                try literal("true")
                return Google_Protobuf_Value(boolValue: true)
            case UInt8(ascii: "f"):
                try literal("false")
                return Google_Protobuf_Value(boolValue: false)
            case UInt8(ascii: "n"):
                try literal("null")
                return Google_Protobuf_Value(nilLiteral: ())
            default:
                return Google_Protobuf_Value(numberValue: try number())
            }
        }

        mutating func object(depth: Int) throws(Malformed) -> Google_Protobuf_Struct {
            offset += 1
            var object = Google_Protobuf_Struct()
            skipSpace()
            if offset < bytes.count, bytes[offset] == UInt8(ascii: "}") {
                offset += 1
                return object
            }
            while true {
                skipSpace()
                guard offset < bytes.count, bytes[offset] == UInt8(ascii: "\"") else { throw fail("a key") }
                let key = try string()
                skipSpace()
                guard offset < bytes.count, bytes[offset] == UInt8(ascii: ":") else { throw fail("':'") }
                offset += 1
                object.fields[key] = try value(depth: depth + 1)
                skipSpace()
                guard offset < bytes.count else { throw fail("',' or '}'") }
                let next = bytes[offset]
                offset += 1
                if next == UInt8(ascii: "}") { return object }
                guard next == UInt8(ascii: ",") else { offset -= 1; throw fail("',' or '}'") }
            }
        }

        mutating func literal(_ word: StaticString) throws(Malformed) {
            let count = word.utf8CodeUnitCount
            guard offset + count <= bytes.count,
                  memcmp(bytes.baseAddress! + offset, word.utf8Start, count) == 0
            else { throw fail("\(word)") }
            offset += count
        }

        mutating func number() throws(Malformed) -> Double {
            let start = offset
            while offset < bytes.count, Self.isNumberByte(bytes[offset]) { offset += 1 }
            guard offset > start else { throw fail("a value") }
            // strtod needs a terminated string; numbers are short next to the documents they sit in.
            var text = [CChar](repeating: 0, count: offset - start + 1)
            for index in 0..<(offset - start) { text[index] = CChar(bitPattern: bytes[start + index]) }
            var end: UnsafeMutablePointer<CChar>?
            let parsed = text.withUnsafeMutableBufferPointer { buffer in
                let value = strtod(buffer.baseAddress!, &end)
                return (value, end.map { $0 - buffer.baseAddress! } ?? 0)
            }
            guard parsed.1 == offset - start else {
                offset = start + parsed.1
                throw fail("a number")
            }
            return parsed.0
        }

        static func isNumberByte(_ byte: UInt8) -> Bool {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "+"), UInt8(ascii: "."),
                 UInt8(ascii: "e"), UInt8(ascii: "E"):
                true
            default:
                false
            }
        }

        mutating func string() throws(Malformed) -> String {
            offset += 1
            let start = offset
            // Most stored strings have no escapes: those are one copy of their bytes.
            while offset < bytes.count, bytes[offset] != UInt8(ascii: "\""), bytes[offset] != UInt8(ascii: "\\") { offset += 1 }
            guard offset < bytes.count else { throw fail("'\"'") }
            if bytes[offset] == UInt8(ascii: "\"") {
                offset += 1
                return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<(offset - 1)]), as: UTF8.self)
            }
            var decoded = Array(bytes[start..<offset])
            while offset < bytes.count {
                let byte = bytes[offset]
                offset += 1
                switch byte {
                case UInt8(ascii: "\""):
                    return String(decoding: decoded, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    guard offset < bytes.count else { throw fail("an escape") }
                    let escape = bytes[offset]
                    offset += 1
                    switch escape {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): decoded.append(escape)
                    case UInt8(ascii: "b"): decoded.append(0x08)
                    case UInt8(ascii: "f"): decoded.append(0x0C)
                    case UInt8(ascii: "n"): decoded.append(0x0A)
                    case UInt8(ascii: "r"): decoded.append(0x0D)
                    case UInt8(ascii: "t"): decoded.append(0x09)
                    case UInt8(ascii: "u"):
                        var scalar = try hex4()
                        if (0xD800..<0xDC00).contains(scalar) {
                            guard offset + 1 < bytes.count, bytes[offset] == UInt8(ascii: "\\"), bytes[offset + 1] == UInt8(ascii: "u")
                            else { throw fail("the low half of a surrogate pair") }
                            offset += 2
                            let low = try hex4()
                            guard (0xDC00..<0xE000).contains(low) else { throw fail("the low half of a surrogate pair") }
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        }
                        guard let unicode = Unicode.Scalar(scalar) else { throw fail("a Unicode scalar") }
                        decoded.append(contentsOf: Array(String(Character(unicode)).utf8))
                    default:
                        offset -= 1
                        throw fail("an escape")
                    }
                default:
                    decoded.append(byte)
                }
            }
            throw fail("'\"'")
        }

        mutating func hex4() throws(Malformed) -> UInt32 {
            guard offset + 4 <= bytes.count else { throw fail("four hex digits") }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = bytes[offset]
                let digit: UInt32
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
                default: throw fail("four hex digits")
                }
                value = value << 4 | digit
                offset += 1
            }
            return value
        }
    }
}
