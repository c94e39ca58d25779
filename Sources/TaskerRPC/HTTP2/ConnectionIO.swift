import NIOCore

/// Moves nghttp2's output to the socket for one connection: coalesces flushes, stops while the
/// socket is not writable (so frames stay inside nghttp2 and stream buffers, which are bounded),
/// and closes the channel once the last bytes are written.
final class ConnectionIO {
    /// Inside a run of channelRead calls: channelReadComplete will flush.
    var isReading = false
    var isFlushing = false
    var flushScheduled = false
    private var flushAgain = false
    /// Close the connection once what is queued has been written.
    var closeAfterFlush = false
    private var closing = false

    /// Feeds bytes read from the socket to nghttp2. On a fatal HTTP/2 error the session is
    /// terminated (GOAWAY queued) and the connection closes once that is written.
    func receive(_ bytes: ByteBuffer, session: NGHTTP2Session) -> NGHTTP2Error? {
        isReading = true
        do {
            try bytes.withUnsafeReadableBytes { raw throws(NGHTTP2Error) in try session.receive(raw) }
            return nil
        } catch {
            session.terminate(error: .protocolError)
            closeAfterFlush = true
            return error
        }
    }

    /// Arranges for `flush` to run once the current event-loop tick is over, unless a read
    /// (flushed at channelReadComplete) or a flush (which goes round again) is already under way.
    func scheduleFlush(on loop: any EventLoop, _ flush: @escaping () -> Void) {
        guard !isReading, !flushScheduled else { return }
        if isFlushing {
            flushAgain = true
            return
        }
        flushScheduled = true
        loop.assumeIsolated().execute {
            self.flushScheduled = false
            flush()
        }
    }

    /// Drains nghttp2 into the channel. `afterOutput` runs after each drain so that what
    /// nghttp2 reported while producing output (closed streams, sent trailers) is acted on.
    /// A call made while a flush is under way (the socket became writable again inside
    /// `context.flush()`, say) makes that flush go round once more instead of being lost.
    func flush(session: NGHTTP2Session, context: ChannelHandlerContext, afterOutput: () -> Void) {
        guard !closing else { return }
        guard !isFlushing else {
            flushAgain = true
            return
        }
        isFlushing = true
        defer { isFlushing = false }
        var lastWrite: EventLoopFuture<Void>?
        repeat {
            flushAgain = false
            var wrote = false
            while context.channel.isWritable, session.wantsWrite {
                var buffer = context.channel.allocator.buffer(capacity: 4096)
                do {
                    try session.drainOutput(into: &buffer, limit: 1 << 16)
                } catch {
                    closeAfterFlush = true
                }
                afterOutput()
                guard buffer.readableBytes > 0 else { break }
                wrote = true
                if closeAfterFlush || !session.isAlive {
                    let promise = context.eventLoop.makePromise(of: Void.self)
                    context.write(NIOAny(buffer), promise: promise)
                    lastWrite = promise.futureResult
                } else {
                    context.write(NIOAny(buffer), promise: nil)
                }
            }
            if wrote { context.flush() }
        } while flushAgain && !closeAfterFlush
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
