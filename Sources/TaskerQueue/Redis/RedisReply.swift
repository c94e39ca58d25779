/// One reply of Redis (RESP2), copied out of hiredis's reply object.
public enum RedisReply: Sendable, Equatable {
    case status(String)
    case error(String)
    case integer(Int)
    case string(String)
    case null
    case array([RedisReply])

    public var string: String? {
        switch self {
        case .string(let text), .status(let text): text
        case .integer(let number): String(number)
        default: nil
        }
    }

    public var integer: Int? {
        switch self {
        case .integer(let number): number
        case .string(let text): Int(text)
        default: nil
        }
    }

    public var array: [RedisReply] {
        if case .array(let elements) = self { return elements }
        return []
    }

    public var isNull: Bool { self == .null }
}

/// A failure talking to Redis.
public enum RedisError: Error, CustomStringConvertible, Sendable, Equatable {
    /// Redis cannot be reached or the connection broke; the operation may be tried again.
    case unavailable(String)
    /// Redis answered a command with an error (`NOGROUP …`, `WRONGTYPE …`).
    case reply(String)
    /// The URL cannot be used.
    case invalidURL(String)

    public var description: String {
        switch self {
        case .unavailable(let message): "redis unavailable: \(message)"
        case .reply(let message): "redis error: \(message)"
        case .invalidURL(let message): "redis URL: \(message)"
        }
    }
}
