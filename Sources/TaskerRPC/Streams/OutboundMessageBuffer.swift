import NIOCore

/// The framed messages of one stream waiting for nghttp2 to take them as DATA, and the trailers
/// (or END_STREAM) that follow the last one.
struct OutboundMessageBuffer {
    private var bytes: ByteBuffer
    /// Set once the sender is done; nil trailers end the stream with an empty DATA frame.
    private(set) var ending: HeaderBlock??
    /// True while nghttp2 holds the stream as deferred and must be resumed for new bytes.
    var isDeferred = false

    init(allocator: ByteBufferAllocator) {
        bytes = allocator.buffer(capacity: 0)
    }

    var bufferedBytes: Int { bytes.readableBytes }
    var isEnding: Bool { ending != nil }

    mutating func append(message: ByteBuffer) {
        bytes.writeGRPCMessage(message)
    }

    mutating func end(trailers: HeaderBlock?) {
        ending = .some(trailers)
    }

    /// Copies what fits into nghttp2's frame buffer.
    mutating func read(into target: UnsafeMutableRawBufferPointer) -> OutboundChunk {
        let count = min(target.count, bytes.readableBytes)
        if count > 0 {
            bytes.withUnsafeReadableBytes { source in
                target.baseAddress!.copyMemory(from: source.baseAddress!, byteCount: count)
            }
            bytes.moveReaderIndex(forwardBy: count)
            if bytes.readableBytes == 0 { bytes.clear() }
        }
        if bytes.readableBytes == 0, let ending {
            return .end(count, trailers: ending)
        }
        if count == 0 {
            isDeferred = true
            return .deferred
        }
        return .bytes(count)
    }
}
