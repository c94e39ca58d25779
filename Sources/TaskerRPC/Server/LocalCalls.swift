import NIOCore
import SwiftProtobuf

/// The methods of a server, called from inside its process: the HTTP API's way to the same
/// handlers, through the same gate, so that no operation is written twice. A call made here
/// ends as a call over the wire would, with a response or an `RPCError` carrying its status.
public struct LocalCalls: Sendable {
    let router: RPCRouter
    let gate: (any CallGate)?

    /// What a call carries in place of an HTTP/2 request's headers.
    public struct Caller: Sendable {
        /// The credentials, as the RPCs carry them (`authorization: Bearer …`).
        public var metadata: Metadata
        /// The caller's address, for logs.
        public var peer: String

        public init(metadata: Metadata = [:], peer: String) {
            self.metadata = metadata
            self.peer = peer
        }
    }

    public func unary<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ path: String, _ request: Request, from caller: Caller, as _: Response.Type = Response.self
    ) async throws(RPCError) -> Response {
        let method = try admitted(path, .unary)
        let reply = try await run(method, path, request, caller, sink: DiscardingSink())
        guard let reply else { throw RPCError(.internal, "\(path) answered with no message") }
        return try Response(rpcBytes: reply, as: .response)
    }

    /// Runs a server-streaming method, handing each message to `each` and waiting for it, so a
    /// consumer that stops taking messages holds the handler as a slow client would.
    public func serverStreaming<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ path: String, _ request: Request, from caller: Caller, each: @escaping @Sendable (Response) async throws -> Void
    ) async throws(RPCError) {
        let method = try admitted(path, .serverStreaming)
        _ = try await run(method, path, request, caller, sink: DecodingSink(each: each))
    }

    /// Whether the gate lets `caller` call `path`, without calling it: a stream's refusal can
    /// then be its response's status rather than its last event.
    public func admit(_ path: String, from caller: Caller) async throws(RPCError) {
        guard let gate else { return }
        do {
            _ = try await gate.admit(ServerContext(path: path, metadata: caller.metadata, deadline: nil, peer: caller.peer))
        } catch let error as RPCError {
            throw error
        } catch {
            throw RPCError(.unknown, "the call could not be checked: \(error)")
        }
    }

    private func admitted(_ path: String, _ kind: MethodKind) throws(RPCError) -> RegisteredMethod {
        guard let method = router.methods[path] else { throw RPCError(status: router.unimplemented(path: path)) }
        guard method.kind == kind else { throw RPCError(.internal, "\(path) is not a \(kind) method") }
        return method
    }

    private func run(
        _ method: RegisteredMethod, _ path: String, _ request: some SwiftProtobuf.Message, _ caller: Caller, sink: any ResponseSink
    ) async throws(RPCError) -> ByteBuffer? {
        let context = ServerContext(path: path, metadata: caller.metadata, deadline: nil, peer: caller.peer)
        do {
            if let gate { context.caller = try await gate.admit(context) }
            return try await method.run(.single(try request.rpcBytes()), context, sink)
        } catch let error as RPCError {
            throw error
        } catch is CancellationError {
            throw RPCError(.cancelled, "the call was cancelled")
        } catch {
            throw RPCError(.unknown, "handler failed: \(error)")
        }
    }
}

private struct DiscardingSink: ResponseSink {
    func write(_ message: ByteBuffer) async throws {}
}

private struct DecodingSink<Response: SwiftProtobuf.Message>: ResponseSink {
    let each: @Sendable (Response) async throws -> Void

    func write(_ message: ByteBuffer) async throws {
        try await each(try Response(rpcBytes: message, as: .response))
    }
}
