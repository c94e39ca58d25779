import NIOCore

/// Per-call settings.
public struct CallOptions: Sendable {
    /// The call fails with DEADLINE_EXCEEDED after this long; the server learns it from
    /// `grpc-timeout`.
    public var timeout: TimeAmount?

    public init(timeout: TimeAmount? = nil) {
        self.timeout = timeout
    }
}

/// The end of a call as the client saw it.
public struct CallResult: Sendable {
    public var status: Status
    public var trailingMetadata: Metadata
}
