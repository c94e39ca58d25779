import NIOCore

/// One call as its connection holds it, on the connection's event loop.
final class ClientStream {
    var id: Int32 = -1
    let path: String
    var state = ClientStreamStateMachine()
    var fields: [(name: String, value: String)] = []
    var deframer: MessageDeframer
    /// Set right after creation: its drain callback needs the stream itself.
    var responses: InboundMessageQueue!
    var headersDelivered = false
    var outbound: OutboundMessageBuffer
    var writableWaiter: UnsafeContinuation<Void, any Error>?
    var unconsumedBytes = 0
    var windowHeld = false
    var deadlineTimer: Scheduled<Void>?
    let headersPromise: EventLoopPromise<Metadata>
    let resultPromise: EventLoopPromise<CallResult>

    init(path: String, receiveLimit: Int, loop: any EventLoop, allocator: ByteBufferAllocator) {
        self.path = path
        self.deframer = MessageDeframer(limit: receiveLimit, allocator: allocator)
        self.outbound = OutboundMessageBuffer(allocator: allocator)
        self.headersPromise = loop.makePromise()
        self.resultPromise = loop.makePromise()
    }

    func deliverHeaders(_ metadata: Metadata) {
        guard !headersDelivered else { return }
        headersDelivered = true
        headersPromise.succeed(metadata)
    }
}
