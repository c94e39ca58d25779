import AsyncAlgorithms
import Foundation
import HTTPTypes
import Hummingbird
import TaskerRPC

/// A Server-Sent Events response fed by a streaming call. Each message is one event; the call's
/// end is a last `status` event (`{"code": "OK"}`, or the refusal), after which a client should
/// not reconnect. A comment line every `heartbeat` finds a client that left while nothing
/// happened (HTTP/1.1 tells the server only when it writes).
enum EventStream {
    /// One event's bytes: `id:` when the message has one, `event:` when it is not a message.
    static func event(id: UInt64? = nil, name: String? = nil, data: Data) -> ByteBuffer {
        var buffer = ByteBuffer()
        if let id { buffer.writeString("id: \(id)\n") }
        if let name { buffer.writeString("event: \(name)\n") }
        buffer.writeString("data: ")
        buffer.writeBytes(data)  // proto JSON and JSONSerialization write no newlines
        buffer.writeString("\n\n")
        return buffer
    }

    static func status(_ error: RPCError?) -> ByteBuffer {
        let object: [String: String] = error.map { ["code": $0.code.description, "message": $0.status.sentMessage] } ?? ["code": "OK"]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return event(name: "status", data: data)
    }

    private enum Item: Sendable {
        case chunk(ByteBuffer)
        case last(ByteBuffer)
    }

    /// `produce` sends the events; each send waits until the event is written, so a client that
    /// reads slowly holds the call back as a slow gRPC client would.
    static func response(
        heartbeat: Duration,
        produce: @escaping @Sendable (_ send: @escaping @Sendable (ByteBuffer) async -> Void) async throws(RPCError) -> Void
    ) -> Response {
        let body = ResponseBody { writer in
            let items = AsyncChannel<Item>()
            let producer = Task {
                var failure: RPCError?
                do throws(RPCError) {
                    try await produce { await items.send(.chunk($0)) }
                } catch {
                    failure = error
                }
                await items.send(.last(status(failure)))
            }
            let beats = Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: heartbeat)
                    if Task.isCancelled { break }
                    await items.send(.chunk(ByteBuffer(string: ": keepalive\n\n")))
                }
            }
            defer {
                producer.cancel()
                beats.cancel()
                items.finish()
            }
            for await item in items {
                switch item {
                case .chunk(let bytes):
                    try await writer.write(bytes)
                case .last(let bytes):
                    try await writer.write(bytes)
                    try await writer.finish(nil)
                    return
                }
            }
        }
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-cache", HTTPField.Name("X-Accel-Buffering")!: "no"],
            body: body)
    }
}
