/// Why the engine refused an operation, in terms a caller can act on. The service maps each
/// case to its gRPC status.
public enum EngineError: Error, Equatable, CustomStringConvertible, Sendable {
    case invalidArgument(String)
    case notFound(String)
    case alreadyExists(String)
    case failedPrecondition(String)
    /// The store cannot be reached; retry later.
    case unavailable(String)

    public var description: String {
        switch self {
        case .invalidArgument(let message), .notFound(let message), .alreadyExists(let message),
             .failedPrecondition(let message), .unavailable(let message):
            message
        }
    }
}
