import NIOCore
import SwiftProtobuf

/// The four shapes of a gRPC method.
public enum MethodKind: Sendable {
    case unary, serverStreaming, clientStreaming, bidirectionalStreaming

    /// Unary and server-streaming methods take exactly one request message.
    var takesSingleRequest: Bool {
        self == .unary || self == .serverStreaming
    }
}

/// Where a handler's requests come from.
enum RequestSource: Sendable {
    case single(ByteBuffer)
    case stream(InboundMessageQueue)
}

struct RegisteredMethod: Sendable {
    let kind: MethodKind
    /// Runs the handler; returning means status OK, with the single response message of a
    /// unary or client-streaming method. The sink takes a streaming method's messages.
    let run: @Sendable (RequestSource, ServerContext, any ResponseSink) async throws -> ByteBuffer?
}

/// A service a server can host.
public protocol RPCService: Sendable {
    func register(into router: inout RPCRouter)
}

/// The table from method path to typed handler.
public struct RPCRouter: Sendable {
    private(set) var methods: [String: RegisteredMethod] = [:]
    private(set) var services: Set<String> = []

    public init() {}

    public mutating func add(_ services: [any RPCService]) {
        for service in services { service.register(into: &self) }
    }

    public mutating func registerUnary<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ path: String, _ handler: @escaping @Sendable (Request, ServerContext) async throws -> Response
    ) {
        register(path, .unary) { source, context, _ in
            let request = try Request(rpcBytes: source.singleRequest, as: .request)
            return try await handler(request, context).rpcBytes()
        }
    }

    public mutating func registerServerStreaming<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ path: String, _ handler: @escaping @Sendable (Request, ResponseWriter<Response>, ServerContext) async throws -> Void
    ) {
        register(path, .serverStreaming) { source, context, sink in
            let request = try Request(rpcBytes: source.singleRequest, as: .request)
            try await handler(request, ResponseWriter(sink: sink), context)
            return nil
        }
    }

    public mutating func registerClientStreaming<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ path: String, _ handler: @escaping @Sendable (MessageStream<Request>, ServerContext) async throws -> Response
    ) {
        register(path, .clientStreaming) { source, context, _ in
            return try await handler(MessageStream(queue: source.queue, side: .request), context).rpcBytes()
        }
    }

    public mutating func registerBidirectionalStreaming<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ path: String,
        _ handler: @escaping @Sendable (MessageStream<Request>, ResponseWriter<Response>, ServerContext) async throws -> Void
    ) {
        register(path, .bidirectionalStreaming) { source, context, sink in
            try await handler(MessageStream(queue: source.queue, side: .request), ResponseWriter(sink: sink), context)
            return nil
        }
    }

    private mutating func register(
        _ path: String, _ kind: MethodKind, run: @escaping @Sendable (RequestSource, ServerContext, any ResponseSink) async throws -> ByteBuffer?
    ) {
        precondition(path.hasPrefix("/") && path.dropFirst().contains("/"), "method path must be /package.Service/Method, got \(path)")
        methods[path] = RegisteredMethod(kind: kind, run: run)
        services.insert(Self.serviceName(of: path))
    }

    /// What the server answers for a path no method is registered at.
    func unimplemented(path: String) -> Status {
        let service = Self.serviceName(of: path)
        if services.contains(service) {
            return Status(.unimplemented, "method \(Self.shown(path)) is not implemented by service \(service)")
        }
        return Status(.unimplemented, "service \(Self.shown(service.isEmpty ? path : service)) is not served here")
    }

    /// A caller's path as a message shows it: its first 100 characters.
    private static func shown(_ text: String) -> String {
        text.count <= 100 ? text : "\(text.prefix(100))… (\(text.utf8.count) bytes)"
    }

    static func serviceName(of path: String) -> String {
        let trimmed = path.drop { $0 == "/" }
        return String(trimmed.prefix { $0 != "/" })
    }
}

extension RequestSource {
    var singleRequest: ByteBuffer {
        guard case .single(let bytes) = self else { preconditionFailure("method kind takes a request stream") }
        return bytes
    }

    var queue: InboundMessageQueue {
        guard case .stream(let queue) = self else { preconditionFailure("method kind takes a single request") }
        return queue
    }
}
