import NIOCore
import SwiftProtobuf

/// Where a streaming response's messages go: the call's HTTP/2 stream, or, for a call made
/// inside the process (`LocalCalls`), whatever the caller does with them.
protocol ResponseSink: Sendable {
    func write(_ message: ByteBuffer) async throws
}

/// Sends the messages of a streaming response. `write` waits while the stream already holds
/// more than its buffer allows, so a client that stops reading slows the handler down instead
/// of growing the server's memory.
public struct ResponseWriter<Message: SwiftProtobuf.Message>: Sendable {
    let sink: any ResponseSink

    public func write(_ message: Message) async throws {
        try await sink.write(try message.rpcBytes())
    }
}
