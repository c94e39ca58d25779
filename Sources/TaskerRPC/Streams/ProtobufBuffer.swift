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
    /// Decodes a received message; a malformed one is INTERNAL, as gRPC treats undecodable payloads.
    init(rpcBytes bytes: ByteBuffer) throws(RPCError) {
        do {
            self = try Self(serializedBytes: ProtobufBuffer(bytes))
        } catch {
            throw RPCError(.internal, "could not decode \(Self.protoMessageName): \(error)")
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
