/// Custom metadata of a call: request headers, response headers or trailers. Keys are lowercase
/// ASCII; keys ending in `-bin` carry bytes, sent base64-encoded.
public struct Metadata: Sendable, Equatable, Sequence, ExpressibleByDictionaryLiteral {
    public enum Value: Sendable, Equatable, CustomStringConvertible {
        case string(String)
        case binary([UInt8])

        var headerValue: String {
            switch self {
            case .string(let text): text
            case .binary(let bytes): Base64.encode(bytes)
            }
        }

        public var description: String {
            switch self {
            case .string(let text): text
            case .binary(let bytes): "<\(bytes.count) bytes>"
            }
        }
    }

    public typealias Element = (key: String, value: Value)

    private var entries: [Element] = []

    public init() {}

    public init(dictionaryLiteral elements: (String, Value)...) {
        for (key, value) in elements { add(key, value) }
    }

    public var isEmpty: Bool { entries.isEmpty }
    public var count: Int { entries.count }

    /// Adds an entry; the key is lowercased, as HTTP/2 requires.
    public mutating func add(_ key: String, _ value: Value) {
        entries.append((key.lowercased(), value))
    }

    public mutating func add(_ key: String, _ value: String) {
        add(key, .string(value))
    }

    public mutating func add(_ key: String, bytes: [UInt8]) {
        add(key, .binary(bytes))
    }

    /// The entries of both, `lhs`'s first.
    public static func + (lhs: Metadata, rhs: Metadata) -> Metadata {
        var both = lhs
        both.entries += rhs.entries
        return both
    }

    /// Every value of `key`, in the order received.
    public subscript(key: String) -> [Value] {
        let key = key.lowercased()
        return entries.filter { $0.key == key }.map(\.value)
    }

    public func first(_ key: String) -> Value? {
        let key = key.lowercased()
        return entries.first { $0.key == key }?.value
    }

    public func firstString(_ key: String) -> String? {
        if case .string(let text)? = first(key) { return text }
        return nil
    }

    public func firstBytes(_ key: String) -> [UInt8]? {
        if case .binary(let bytes)? = first(key) { return bytes }
        return nil
    }

    public func makeIterator() -> IndexingIterator<[Element]> {
        entries.makeIterator()
    }

    public static func == (lhs: Metadata, rhs: Metadata) -> Bool {
        lhs.entries.elementsEqual(rhs.entries) { $0.key == $1.key && $0.value == $1.value }
    }

    /// Adds a header received from the peer: `-bin` values are decoded, and reserved headers
    /// (pseudo-headers, `grpc-*` transport headers, connection headers) are left out.
    /// Returns false for a `-bin` value that is not base64.
    mutating func addReceived(name: String, value: String) -> Bool {
        if Self.isReserved(name) { return true }
        if name.hasSuffix("-bin") {
            guard let bytes = Base64.decode(value) else { return false }
            entries.append((name, .binary(bytes)))
        } else {
            entries.append((name, .string(value)))
        }
        return true
    }

    static func isReserved(_ name: String) -> Bool {
        guard let first = name.utf8.first else { return true }
        if first == UInt8(ascii: ":") { return true }
        switch name {
        case "content-type", "te", "grpc-timeout", "grpc-encoding", "grpc-accept-encoding",
             "grpc-status", "grpc-message", "content-length",
             "user-agent", "connection", "transfer-encoding", "host":
            return true
        default:
            return false
        }
    }
}
