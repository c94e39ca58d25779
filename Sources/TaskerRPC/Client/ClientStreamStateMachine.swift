/// The lifecycle of one client call on its HTTP/2 stream.
struct ClientStreamStateMachine: Equatable {
    enum Outbound: Equatable {
        /// Request messages may still be sent.
        case open
        /// END_STREAM sent.
        case closed
    }

    enum Inbound: Equatable {
        /// No response HEADERS yet.
        case awaitingHeaders
        /// Response headers in; messages may follow until the trailers.
        case receivingMessages
        /// Status known: from trailers, a Trailers-Only response, a reset, a deadline or a cancel.
        case finished
    }

    enum Violation: Error, Equatable {
        case requestAlreadyClosed
        case callFinished
        /// A response message before the response headers.
        case messageBeforeHeaders
        /// A second HEADERS frame that does not end the stream.
        case headersWithoutEndStream
    }

    /// What a received HEADERS frame is.
    enum HeadersKind: Equatable {
        case initial
        /// The only HEADERS of the response; it carries the status.
        case trailersOnly
        case trailers
    }

    private(set) var outbound: Outbound = .open
    private(set) var inbound: Inbound = .awaitingHeaders

    mutating func sendMessage() throws(Violation) {
        if inbound == .finished { throw .callFinished }
        if outbound == .closed { throw .requestAlreadyClosed }
    }

    mutating func closeRequest() throws(Violation) {
        if inbound == .finished { throw .callFinished }
        if outbound == .closed { throw .requestAlreadyClosed }
        outbound = .closed
    }

    mutating func receiveHeaders(endStream: Bool) throws(Violation) -> HeadersKind {
        switch inbound {
        case .awaitingHeaders:
            inbound = endStream ? .finished : .receivingMessages
            return endStream ? .trailersOnly : .initial
        case .receivingMessages:
            guard endStream else { throw .headersWithoutEndStream }
            inbound = .finished
            return .trailers
        case .finished:
            throw .callFinished
        }
    }

    mutating func receiveMessage() throws(Violation) {
        switch inbound {
        case .awaitingHeaders: throw .messageBeforeHeaders
        case .receivingMessages: return
        case .finished: throw .callFinished
        }
    }

    /// The call ends without trailers (reset, deadline, cancel, lost connection). Returns false
    /// if it had already finished.
    mutating func finish() -> Bool {
        guard inbound != .finished else { return false }
        inbound = .finished
        outbound = .closed
        return true
    }
}
