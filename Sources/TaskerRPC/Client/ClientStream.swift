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
    var flow: StreamFlow
    var deadlineTimer: Scheduled<Void>?
    let headersPromise: EventLoopPromise<Metadata>
    let resultPromise: EventLoopPromise<CallResult>

    init(path: String, receiveLimit: Int, sendBufferSize: Int, loop: any EventLoop, allocator: ByteBufferAllocator) {
        self.path = path
        self.deframer = MessageDeframer(limit: receiveLimit, allocator: allocator)
        self.flow = StreamFlow(sendBufferSize: sendBufferSize, allocator: allocator)
        self.headersPromise = loop.makePromise()
        self.resultPromise = loop.makePromise()
    }

    func deliverHeaders(_ metadata: Metadata) {
        guard !headersDelivered else { return }
        headersDelivered = true
        headersPromise.succeed(metadata)
    }
}
