import NIOConcurrencyHelpers
import NIOCore

/// What a handler knows of its call, and the response metadata it chooses.
public final class ServerContext: Sendable {
    /// The method's path, `/package.Service/Method`.
    public let path: String
    /// The request's custom metadata.
    public let metadata: Metadata
    /// When the client stops waiting, from its `grpc-timeout`.
    public let deadline: NIODeadline?
    /// The client's address.
    public let peer: String

    private let response = NIOLockedValueBox<(initial: Metadata, trailing: Metadata)>((Metadata(), Metadata()))
    private let admitted = NIOLockedValueBox<(any Sendable)?>(nil)

    init(path: String, metadata: Metadata, deadline: NIODeadline?, peer: String) {
        self.path = path
        self.metadata = metadata
        self.deadline = deadline
        self.peer = peer
    }

    /// Who is calling, as the server's `CallGate` found; nil without a gate.
    public internal(set) var caller: (any Sendable)? {
        get { admitted.withLockedValue { $0 } }
        set { admitted.withLockedValue { $0 = newValue } }
    }

    /// Metadata for the response headers; sent with the first message, or with the status when
    /// there is none. Setting it after that has no effect.
    public var initialMetadata: Metadata {
        get { response.withLockedValue { $0.initial } }
        set { response.withLockedValue { $0.initial = newValue } }
    }

    /// Metadata sent in the trailers with the status.
    public var trailingMetadata: Metadata {
        get { response.withLockedValue { $0.trailing } }
        set { response.withLockedValue { $0.trailing = newValue } }
    }
}
