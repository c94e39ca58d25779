import NIOCore
import SwiftProtobuf

/// Lets swift-protobuf read from and write into a `ByteBuffer` without an intermediate array.
struct ProtobufBuffer: SwiftProtobufContiguousBytes {
    var buffer: ByteBuffer

    init(_ buffer: ByteBuffer) {
        self.buffer = buffer
    }

    init(repeating: UInt8, count: Int) {
        buffer = ByteBuffer(repeating: repeating, count: count)
    }

    init<S: Sequence>(_ sequence: S) where S.Element == UInt8 {
        buffer = ByteBuffer(bytes: sequence)
    }

    var count: Int { buffer.readableBytes }

    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try buffer.withUnsafeReadableBytes(body)
    }

    mutating func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        try buffer.withUnsafeMutableReadableBytes(body)
    }
}

extension SwiftProtobuf.Message {
    /// Decodes a received message. A request that does not decode (cut short, a wrong wire
    /// type, invalid UTF-8 in a string, nested past the decoder's depth limit) is the caller's
    /// error, INVALID_ARGUMENT; a response that does not decode is INTERNAL, as gRPC has it.
    /// Either way the message names the type.
    init(rpcBytes bytes: ByteBuffer, as side: MessageSide) throws(RPCError) {
        do {
            self = try Self(serializedBytes: ProtobufBuffer(bytes))
        } catch {
            switch side {
            case .request: throw RPCError(.invalidArgument, "the request is not a valid \(Self.protoMessageName): \(error)")
            case .response: throw RPCError(.internal, "the response is not a valid \(Self.protoMessageName): \(error)")
            }
        }
    }

    /// Encodes a message to send.
    func rpcBytes() throws(RPCError) -> ByteBuffer {
        do {
            let encoded: ProtobufBuffer = try serializedBytes()
            return encoded.buffer
        } catch {
            throw RPCError(.internal, "could not encode \(Self.protoMessageName): \(error)")
        }
    }
}

/// Which side of a call a received message is.
enum MessageSide: Sendable {
    case request, response
}
