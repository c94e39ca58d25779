/// A failure talking to Postgres.
public enum PostgresError: Error, CustomStringConvertible, Sendable {
    /// The server cannot be reached or the connection broke; the operation may be retried.
    case unavailable(String)
    /// The server refused a statement: `sqlState` says why (23505 unique violation, …).
    case statement(sqlState: String, message: String)

    public var description: String {
        switch self {
        case .unavailable(let message): "postgres unavailable: \(message)"
        case .statement(let state, let message): "postgres error \(state): \(message)"
        }
    }

    public var sqlState: String? {
        if case .statement(let state, _) = self { return state }
        return nil
    }

    public var isUniqueViolation: Bool { sqlState == "23505" }
    /// A serialization failure or deadlock: the transaction may be run again.
    public var isRetryable: Bool { sqlState == "40001" || sqlState == "40P01" }
}
