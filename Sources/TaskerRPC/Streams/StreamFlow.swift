import NIOCore

/// The flow of bytes through one stream, the same for a server call and a client call: the
/// outbound messages waiting for nghttp2, the writer waiting for room among them, and the
/// inbound bytes whose flow-control window has not been returned yet.
struct StreamFlow {
    var outbound: OutboundMessageBuffer
    /// A writer waiting for `outbound` to drain below the low-water mark.
    private var writableWaiter: UnsafeContinuation<Void, any Error>?
    /// Received bytes whose window has not been returned to the peer.
    var unconsumedBytes = 0
    /// Set while the reader is behind: window is held back until it catches up.
    var windowHeld = false
    private let sendBufferSize: Int

    init(sendBufferSize: Int, allocator: ByteBufferAllocator) {
        self.outbound = OutboundMessageBuffer(allocator: allocator)
        self.sendBufferSize = sendBufferSize
    }

    /// Queues a message; returns false when the writer should wait for room.
    mutating func enqueue(_ message: ByteBuffer) -> Bool {
        outbound.append(message: message)
        return outbound.bufferedBytes <= sendBufferSize
    }

    /// Resumes the writer now if there is room, or once there is.
    mutating func waitUntilWritable(_ continuation: UnsafeContinuation<Void, any Error>) {
        if outbound.bufferedBytes <= sendBufferSize / 2 {
            continuation.resume()
        } else {
            writableWaiter = continuation
        }
    }

    /// Hands nghttp2 the next DATA bytes and wakes a waiting writer once there is room again.
    mutating func readOutbound(into buffer: UnsafeMutableRawBufferPointer) -> OutboundChunk {
        let chunk = outbound.read(into: buffer)
        if writableWaiter != nil, outbound.bufferedBytes <= sendBufferSize / 2 {
            writableWaiter.take()?.resume()
        }
        return chunk
    }

    /// A waiting writer learns the stream has ended.
    mutating func failWriter(_ error: any Error) {
        writableWaiter.take()?.resume(throwing: error)
    }

    /// The bytes whose window may go back to the peer now (none while the reader is behind).
    mutating func takeReturnableWindow() -> Int {
        guard !windowHeld else { return 0 }
        defer { unconsumedBytes = 0 }
        return unconsumedBytes
    }

    /// Every byte not yet returned, whatever the reader's state: the stream is gone.
    mutating func takeAllWindow() -> Int {
        defer { unconsumedBytes = 0 }
        return unconsumedBytes
    }
}
