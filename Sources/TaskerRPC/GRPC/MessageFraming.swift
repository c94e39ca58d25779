import NIOCore

/// The gRPC length-prefixed message: a compressed flag byte, a 4-byte big-endian length, then
/// the message bytes.
enum MessageFraming {
    static let prefixLength = 5
}

/// Accumulates DATA bytes of one stream and splits them into messages.
struct MessageDeframer {
    enum Failure: Error, Equatable {
        /// The length prefix announces more than the receive limit allows.
        case tooLarge(length: Int, limit: Int)
        /// A compressed message arrived on a stream that announced no `grpc-encoding`.
        case compressedWithoutEncoding
        /// The stream ended in the middle of a message.
        case truncated(missing: Int)

        var status: Status {
            switch self {
            case .tooLarge(let length, let limit):
                Status(.resourceExhausted, "message of \(length) bytes exceeds the receive limit of \(limit) bytes")
            case .compressedWithoutEncoding:
                Status(.internal, "compressed message received but no grpc-encoding was negotiated")
            case .truncated(let missing):
                Status(.internal, "stream ended inside a message (\(missing) bytes missing)")
            }
        }
    }

    let limit: Int
    private var buffer: ByteBuffer
    /// Length of the message being accumulated, once its prefix has been read.
    private var pendingLength: Int?

    init(limit: Int, allocator: ByteBufferAllocator = ByteBufferAllocator()) {
        self.limit = limit
        self.buffer = allocator.buffer(capacity: 0)
    }

    /// Bytes held that do not yet form a whole message.
    var bufferedBytes: Int { buffer.readableBytes }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        buffer.writeBytes(bytes)
    }

    mutating func append(_ bytes: ByteBuffer) {
        var bytes = bytes
        buffer.writeBuffer(&bytes)
    }

    /// The next whole message, if the buffer holds one.
    mutating func next() throws(Failure) -> ByteBuffer? {
        if pendingLength == nil {
            guard buffer.readableBytes >= MessageFraming.prefixLength else { return nil }
            let flag = buffer.readInteger(as: UInt8.self)!
            let length = Int(buffer.readInteger(endianness: .big, as: UInt32.self)!)
            if flag & 1 != 0 { throw .compressedWithoutEncoding }
            if length > limit { throw .tooLarge(length: length, limit: limit) }
            pendingLength = length
        }
        guard let length = pendingLength, buffer.readableBytes >= length else { return nil }
        pendingLength = nil
        let message = buffer.readSlice(length: length)!
        if buffer.readableBytes == 0 {
            // Reuse the storage from the start instead of letting it grow.
            buffer.clear()
        }
        return message
    }

    /// Checks that the stream did not end inside a message.
    func finish() throws(Failure) {
        if let length = pendingLength {
            throw .truncated(missing: length - buffer.readableBytes)
        }
        if buffer.readableBytes > 0 {
            throw .truncated(missing: MessageFraming.prefixLength - buffer.readableBytes)
        }
    }
}

extension ByteBuffer {
    /// Appends `message` with its gRPC length prefix (never compressed).
    mutating func writeGRPCMessage(_ message: ByteBuffer) {
        writeInteger(UInt8(0))
        writeInteger(UInt32(message.readableBytes), endianness: .big)
        var message = message
        writeBuffer(&message)
    }
}
