import NIOCore

/// A running call as its handler task sees it: the way back to the connection that owns the
/// stream. Every method hops to the connection's event loop, or runs inline when already there.
final class ServerCall: ResponseSink {
    let context: ServerContext
    private let streamID: Int32
    private let connection: NIOLoopBound<ServerConnectionHandler>

    init(context: ServerContext, streamID: Int32, connection: NIOLoopBound<ServerConnectionHandler>) {
        self.context = context
        self.streamID = streamID
        self.connection = connection
    }

    private var loop: any EventLoop { connection.eventLoop }

    /// Queues a response message; waits while the stream's send buffer is full.
    func write(_ message: ByteBuffer) async throws {
        if loop.inEventLoop, try connection.value.enqueue(message: message, streamID: streamID) {
            return
        }
        try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
            if loop.inEventLoop {
                connection.value.waitUntilWritable(streamID: streamID, continuation: continuation)
            } else {
                loop.execute {
                    do {
                        if try self.connection.value.enqueue(message: message, streamID: self.streamID) {
                            continuation.resume()
                        } else {
                            self.connection.value.waitUntilWritable(streamID: self.streamID, continuation: continuation)
                        }
                    } catch {
                        continuation.resume(throwing: error)
                    }
                }
            }
        }
    }

    /// Ends the call: an optional last message, then the status and trailers.
    func finish(lastMessage: ByteBuffer?, status: Status, trailers: Metadata) {
        if loop.inEventLoop {
            connection.value.finish(streamID: streamID, lastMessage: lastMessage, status: status, trailers: trailers)
        } else {
            loop.execute {
                self.connection.value.finish(streamID: self.streamID, lastMessage: lastMessage, status: status, trailers: trailers)
            }
        }
    }
}
