import NIOCore
@testable import TaskerRPC

enum FuzzDeframer {
    /// The first byte says how large the DATA chunks are; the rest is the stream's bytes. Every
    /// message that comes out must be the bytes its length prefix announced.
    static func run(_ input: UnsafeRawBufferPointer) {
        guard let first = input.first else { return }
        let chunk = Int(first) + 1
        let bytes = UnsafeRawBufferPointer(rebasing: input[1...])
        var deframer = MessageDeframer(limit: 1 << 16)
        var offset = 0
        var delivered = 0
        do {
            while offset < bytes.count {
                let end = min(offset + chunk, bytes.count)
                deframer.append(UnsafeRawBufferPointer(rebasing: bytes[offset..<end]))
                offset = end
                while let message = try deframer.next() {
                    precondition(message.readableBytes <= deframer.limit, "a message past the limit came out")
                    delivered += MessageFraming.prefixLength + message.readableBytes
                }
            }
            try deframer.finish()
            precondition(delivered == bytes.count, "a finished stream left bytes behind")
        } catch {
            // A refusal is an answer; what matters is that nothing else happens.
        }
    }
}
