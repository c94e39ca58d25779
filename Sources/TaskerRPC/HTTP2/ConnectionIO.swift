import NIOCore

/// Moves nghttp2's output to the socket for one connection: coalesces flushes, stops while the
/// socket is not writable (so frames stay inside nghttp2 and stream buffers, which are bounded),
/// and closes the channel once the last bytes are written.
final class ConnectionIO {
    /// Inside a run of channelRead calls: channelReadComplete will flush.
    var isReading = false
    var isFlushing = false
    var flushScheduled = false
    /// Close the connection once what is queued has been written.
    var closeAfterFlush = false
    private var closing = false

    /// Drains nghttp2 into the channel. `afterOutput` runs after each drain so that what
    /// nghttp2 reported while producing output (closed streams, sent trailers) is acted on.
    func flush(session: NGHTTP2Session, context: ChannelHandlerContext, afterOutput: () -> Void) {
        guard !isFlushing, !closing else { return }
        isFlushing = true
        defer { isFlushing = false }
        var lastWrite: EventLoopFuture<Void>?
        while context.channel.isWritable, session.wantsWrite {
            var buffer = context.channel.allocator.buffer(capacity: 4096)
            do {
                try session.drainOutput(into: &buffer, limit: 1 << 16)
            } catch {
                closeAfterFlush = true
            }
            afterOutput()
            guard buffer.readableBytes > 0 else { break }
            let promise = context.eventLoop.makePromise(of: Void.self)
            context.write(NIOAny(buffer), promise: closeAfterFlush || !session.isAlive ? promise : nil)
            if closeAfterFlush || !session.isAlive {
                lastWrite = promise.futureResult
            } else {
                promise.succeed()
            }
        }
        context.flush()
        if closeAfterFlush || !session.isAlive {
            closing = true
            let channel = context.channel
            if let lastWrite {
                lastWrite.whenComplete { _ in channel.close(promise: nil) }
            } else {
                context.close(promise: nil)
            }
        }
    }
}
