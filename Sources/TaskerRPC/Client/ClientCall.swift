import NIOCore
import SwiftProtobuf

/// The untyped handle of a running call, safe to use from any task.
struct RawCall: Sendable {
    let stream: NIOLoopBound<ClientStream>
    let connection: NIOLoopBound<ClientConnectionHandler>
    let responses: InboundMessageQueue
    let headers: EventLoopFuture<Metadata>
    let result: EventLoopFuture<CallResult>

    private var loop: any EventLoop { stream.eventLoop }

    func send(_ message: ByteBuffer) async throws {
        if loop.inEventLoop, try connection.value.send(stream.value, message: message) { return }
        try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
            if loop.inEventLoop {
                connection.value.waitUntilWritable(stream.value, continuation: continuation)
                return
            }
            loop.execute {
                do {
                    if try connection.value.send(stream.value, message: message) {
                        continuation.resume()
                    } else {
                        connection.value.waitUntilWritable(stream.value, continuation: continuation)
                    }
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    func finishSending() {
        loop.execute { connection.value.closeRequest(stream.value) }
    }

    func cancel() {
        loop.execute { connection.value.cancel(stream.value) }
    }

    /// The one response of a unary or client-streaming call.
    func singleResponse<Response: SwiftProtobuf.Message>(_: Response.Type) async throws -> UnaryResponse<Response> {
        let result = try await withTaskCancellationHandler {
            try await self.result.get()
        } onCancel: {
            cancel()
        }
        let initial = try await headers.get()
        guard result.status.code == .ok else {
            throw RPCError(status: result.status, metadata: result.trailingMetadata)
        }
        guard let bytes = try await responses.next() else {
            throw RPCError(.internal, "the server ended a unary call with OK but sent no response message")
        }
        if try await responses.next() != nil {
            throw RPCError(.internal, "the server sent more than one response message to a unary call")
        }
        return UnaryResponse(message: try Response(rpcBytes: bytes, as: .response), initialMetadata: initial, trailingMetadata: result.trailingMetadata)
    }
}

/// A running streaming call.
public struct ClientCall<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>: Sendable {
    let raw: RawCall

    /// The response messages; iterating throws `RPCError` after the last one when the status is
    /// not OK.
    public var responses: MessageStream<Response> { MessageStream(queue: raw.responses, side: .response) }

    /// Sends a request message; waits while the stream's send buffer is full.
    public func send(_ message: Request) async throws {
        try await raw.send(try message.rpcBytes())
    }

    /// Closes the request side (END_STREAM).
    public func finishSending() {
        raw.finishSending()
    }

    /// Cancels the call (RST_STREAM CANCEL); it ends with CANCELLED.
    public func cancel() {
        raw.cancel()
    }

    /// The response headers' metadata, once they arrive (empty for a Trailers-Only response).
    public var initialMetadata: Metadata {
        get async throws { try await raw.headers.get() }
    }

    /// The status and trailing metadata, once the call has ended.
    public var result: CallResult {
        get async throws { try await raw.result.get() }
    }

    /// The one response of a client-streaming call; a non-OK status throws `RPCError`.
    public func singleResponse() async throws -> Response {
        try await raw.singleResponse(Response.self).message
    }
}
