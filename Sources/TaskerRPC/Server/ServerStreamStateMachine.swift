/// The lifecycle of one server-side call on its HTTP/2 stream, from the request HEADERS to the
/// close. Inbound and outbound halves close independently; a reset closes both.
struct ServerStreamStateMachine: Equatable {
    enum Inbound: Equatable {
        /// Request messages may still arrive.
        case open
        /// The client sent END_STREAM.
        case closed
    }

    enum Outbound: Equatable {
        /// Nothing sent yet: a status now is a Trailers-Only response.
        case idle
        /// Response headers sent; messages may follow.
        case streaming
        /// Status sent: the call is over for this side.
        case finished
    }

    enum Violation: Error, Equatable {
        /// DATA or END_STREAM after the client had already ended its side.
        case inboundAlreadyClosed
        /// A send after the status was sent.
        case alreadyFinished
        /// A send after the stream was reset or closed.
        case streamClosed
    }

    /// How a status goes out.
    enum StatusShape: Equatable {
        /// HEADERS with END_STREAM carrying the status: nothing else was sent.
        case trailersOnly
        /// Trailers after the response headers and messages.
        case trailers
    }

    private(set) var inbound: Inbound = .open
    private(set) var outbound: Outbound = .idle
    private(set) var isClosed = false

    init(requestEndsStream: Bool = false) {
        if requestEndsStream { inbound = .closed }
    }

    mutating func receiveMessage() throws(Violation) {
        if isClosed { throw .streamClosed }
        if inbound == .closed { throw .inboundAlreadyClosed }
    }

    mutating func receiveEnd() throws(Violation) {
        if isClosed { throw .streamClosed }
        if inbound == .closed { throw .inboundAlreadyClosed }
        inbound = .closed
    }

    /// Returns true when response headers must go out first.
    mutating func sendHeaders() throws(Violation) -> Bool {
        if isClosed { throw .streamClosed }
        switch outbound {
        case .idle:
            outbound = .streaming
            return true
        case .streaming:
            return false
        case .finished:
            throw .alreadyFinished
        }
    }

    /// A message; returns true when the response headers have to be sent before it.
    mutating func sendMessage() throws(Violation) -> Bool {
        try sendHeaders()
    }

    mutating func sendStatus() throws(Violation) -> StatusShape {
        if isClosed { throw .streamClosed }
        switch outbound {
        case .idle:
            outbound = .finished
            return .trailersOnly
        case .streaming:
            outbound = .finished
            return .trailers
        case .finished:
            throw .alreadyFinished
        }
    }

    /// RST_STREAM from either side, or nghttp2 closing the stream: nothing more moves.
    mutating func close() {
        isClosed = true
        inbound = .closed
    }

    /// After the status went out with the client still sending, the rest of its input is
    /// unwanted: the stream is reset with NO_ERROR.
    var needsResetAfterStatus: Bool {
        !isClosed && outbound == .finished && inbound == .open
    }
}
