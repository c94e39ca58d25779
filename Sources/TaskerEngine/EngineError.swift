/// Why the engine refused an operation, in terms a caller can act on. The service maps each
/// case to its gRPC status.
public enum EngineError: Error, Equatable, CustomStringConvertible, Sendable {
    case invalidArgument(String)
    case notFound(String)
    case alreadyExists(String)
    case failedPrecondition(String)
    /// The store cannot be reached; retry later.
    case unavailable(String)
    /// A fault of the engine or the store that the caller cannot fix.
    case `internal`(String)

    public var description: String {
        switch self {
        case .invalidArgument(let message), .notFound(let message), .alreadyExists(let message),
             .failedPrecondition(let message), .unavailable(let message), .internal(let message):
            message
        }
    }
}

import TaskerStore

extension EngineError {
    /// A store failure as the engine reports it.
    public init(_ error: any Error) {
        switch error {
        case let engine as EngineError: self = engine
        case PostgresError.unavailable(let message): self = .unavailable("the database is unavailable: \(message)")
        case let postgres as PostgresError: self = .internal("database error: \(postgres)")
        default: self = .internal("\(error)")
        }
    }
}
