import NIOCore

/// Everything the connection holds for one call, on the connection's event loop.
final class ServerStream {
    let id: Int32
    var state = ServerStreamStateMachine()
    /// Request header fields, gathered until the HEADERS frame is complete.
    var requestFields: [(name: String, value: String)] = []
    /// The request HEADERS are complete; later header fields are trailers, which are ignored.
    var headersReceived = false
    var started = false
    var method: RegisteredMethod?
    var deframer: MessageDeframer
    /// The one request of a unary or server-streaming call.
    var singleRequest: ByteBuffer?
    var requests: InboundMessageQueue?
    var call: ServerCall?
    var task: Task<Void, Never>?
    var flow: StreamFlow
    var deadlineTimer: Scheduled<Void>?
    /// Why the call ended before its handler did (deadline, reset), for the handler's writes.
    var abortedWith: RPCError?

    init(id: Int32, receiveLimit: Int, sendBufferSize: Int, allocator: ByteBufferAllocator) {
        self.id = id
        self.deframer = MessageDeframer(limit: receiveLimit, allocator: allocator)
        self.flow = StreamFlow(sendBufferSize: sendBufferSize, allocator: allocator)
    }
}
