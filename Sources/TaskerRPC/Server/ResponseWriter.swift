import NIOCore
import SwiftProtobuf

/// Sends the messages of a streaming response. `write` waits while the stream already holds
/// more than its buffer allows, so a client that stops reading slows the handler down instead
/// of growing the server's memory.
public struct ResponseWriter<Message: SwiftProtobuf.Message>: Sendable {
    let call: ServerCall

    public func write(_ message: Message) async throws {
        try await call.write(try message.rpcBytes())
    }
}
