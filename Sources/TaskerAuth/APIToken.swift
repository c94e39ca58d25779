import CCrypto

/// An API token: `tkr_` and 32 random base62 characters, shown once when it is made. Only its
/// SHA-256 is stored or kept in memory.
public struct APIToken: Sendable, Equatable {
    public static let prefix = "tkr_"
    static let length = 32
    private static let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)

    public let text: String

    /// A new token from the system's random source; each character is uniform over the 62.
    public static func generate() -> APIToken {
        var generator = SystemRandomNumberGenerator()
        var characters: [UInt8] = []
        characters.reserveCapacity(length)
        while characters.count < length {
            // 248 is the largest multiple of 62 below 256: bytes past it would favour some.
            let byte = UInt8.random(in: 0...255, using: &generator)
            if byte < 248 { characters.append(alphabet[Int(byte % 62)]) }
        }
        return APIToken(validated: prefix + String(decoding: characters, as: UTF8.self))
    }

    /// A token as a caller gave it; nil unless it has a token's shape.
    public init?(_ text: String) {
        let body = text.utf8.dropFirst(Self.prefix.utf8.count)
        guard text.hasPrefix(Self.prefix), body.count == Self.length, body.allSatisfy(Self.isBase62) else { return nil }
        self.text = text
    }

    private static func isBase62(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
    }

    private init(validated text: String) {
        self.text = text
    }

    /// What is stored and looked up.
    public var sha256: [UInt8] {
        var digest = [UInt8](repeating: 0, count: Int(SHA256_DIGEST_LENGTH))
        let bytes = Array(text.utf8)
        _ = SHA256(bytes, bytes.count, &digest)
        return digest
    }

    /// The SHA-256 in hex, as queries give it to Postgres (`decode($1, 'hex')`).
    public var sha256Hex: String {
        sha256.map { String(format: "%02x", $0) }.joined()
    }
}
