/// A gRPC status code (https://github.com/grpc/grpc/blob/master/doc/statuscodes.md).
public enum StatusCode: Int, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case ok = 0
    case cancelled = 1
    case unknown = 2
    case invalidArgument = 3
    case deadlineExceeded = 4
    case notFound = 5
    case alreadyExists = 6
    case permissionDenied = 7
    case resourceExhausted = 8
    case failedPrecondition = 9
    case aborted = 10
    case outOfRange = 11
    case unimplemented = 12
    case `internal` = 13
    case unavailable = 14
    case dataLoss = 15
    case unauthenticated = 16

    public var description: String {
        switch self {
        case .ok: "OK"
        case .cancelled: "CANCELLED"
        case .unknown: "UNKNOWN"
        case .invalidArgument: "INVALID_ARGUMENT"
        case .deadlineExceeded: "DEADLINE_EXCEEDED"
        case .notFound: "NOT_FOUND"
        case .alreadyExists: "ALREADY_EXISTS"
        case .permissionDenied: "PERMISSION_DENIED"
        case .resourceExhausted: "RESOURCE_EXHAUSTED"
        case .failedPrecondition: "FAILED_PRECONDITION"
        case .aborted: "ABORTED"
        case .outOfRange: "OUT_OF_RANGE"
        case .unimplemented: "UNIMPLEMENTED"
        case .internal: "INTERNAL"
        case .unavailable: "UNAVAILABLE"
        case .dataLoss: "DATA_LOSS"
        case .unauthenticated: "UNAUTHENTICATED"
        }
    }

    /// The code for a `grpc-status` value; unknown values map to UNKNOWN as the spec asks.
    init(headerValue: String) {
        self = Int(headerValue).flatMap(StatusCode.init(rawValue:)) ?? .unknown
    }

    /// The gRPC code for a response that ended at the HTTP layer (gRPC's http-grpc-status-mapping).
    init(httpStatus: Int) {
        switch httpStatus {
        case 400: self = .internal
        case 401: self = .unauthenticated
        case 403: self = .permissionDenied
        case 404: self = .unimplemented
        case 429, 502, 503, 504: self = .unavailable
        default: self = .unknown
        }
    }
}

/// The outcome of a call: a code, a message for people, and trailing metadata.
public struct Status: Sendable, Equatable, CustomStringConvertible {
    public var code: StatusCode
    public var message: String

    public init(_ code: StatusCode, _ message: String = "") {
        self.code = code
        self.message = message
    }

    public static let ok = Status(.ok)

    /// The most of a message `grpc-message` carries. Percent-encoded it may triple, and a
    /// stock client takes 8 KiB of metadata in all (grpcio's default): a longer message would
    /// leave the call unanswered there.
    static let sentMessageBytes = 1024

    /// The message as sent: whole when it fits in `sentMessageBytes`, else cut at a
    /// character and marked.
    public var sentMessage: String {
        guard message.utf8.count > Self.sentMessageBytes else { return message }
        let mark = " …"
        var kept = ""
        var bytes = mark.utf8.count
        for character in message {
            bytes += character.utf8.count
            guard bytes <= Self.sentMessageBytes else { break }
            kept.append(character)
        }
        return kept + mark
    }

    public var description: String {
        message.isEmpty ? code.description : "\(code): \(message)"
    }
}

/// The error a call ends with when its status is not OK. Handlers throw it to choose the status;
/// clients receive it with the trailing metadata the server sent.
public struct RPCError: Error, Sendable, CustomStringConvertible {
    public var status: Status
    public var metadata: Metadata

    public init(_ code: StatusCode, _ message: String, metadata: Metadata = [:]) {
        self.status = Status(code, message)
        self.metadata = metadata
    }

    public init(status: Status, metadata: Metadata = [:]) {
        self.status = status
        self.metadata = metadata
    }

    public var code: StatusCode { status.code }
    public var message: String { status.message }
    public var description: String { status.description }
}
