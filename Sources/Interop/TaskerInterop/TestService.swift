import Foundation
import TaskerRPC

/// `grpc.testing.TestService` as the gRPC interop cases expect a server to behave.
public struct TestService: RPCService {
    static let echoInitialKey = "x-grpc-test-echo-initial"
    static let echoTrailingKey = "x-grpc-test-echo-trailing-bin"

    public init() {}

    public func register(into router: inout RPCRouter) {
        let prefix = "/grpc.testing.TestService/"
        router.registerUnary(prefix + "EmptyCall") { (_: Grpc_Testing_Empty, context) in
            Self.echoMetadata(context)
            return Grpc_Testing_Empty()
        }
        router.registerUnary(prefix + "UnaryCall") { (request: Grpc_Testing_SimpleRequest, context) in
            Self.echoMetadata(context)
            if request.hasResponseStatus { try Self.failIfAsked(request.responseStatus) }
            var response = Grpc_Testing_SimpleResponse()
            response.payload = Self.payload(size: Int(request.responseSize))
            return response
        }
        router.registerUnary(prefix + "CacheableUnaryCall") { (request: Grpc_Testing_SimpleRequest, context) in
            Self.echoMetadata(context)
            var response = Grpc_Testing_SimpleResponse()
            response.payload = Self.payload(size: Int(request.responseSize))
            return response
        }
        router.registerServerStreaming(prefix + "StreamingOutputCall") {
            (request: Grpc_Testing_StreamingOutputCallRequest, writer: ResponseWriter<Grpc_Testing_StreamingOutputCallResponse>, context) in
            Self.echoMetadata(context)
            try await Self.respond(to: request, with: writer)
        }
        router.registerClientStreaming(prefix + "StreamingInputCall") {
            (requests: MessageStream<Grpc_Testing_StreamingInputCallRequest>, context) in
            Self.echoMetadata(context)
            var total = 0
            for try await request in requests { total += request.payload.body.count }
            var response = Grpc_Testing_StreamingInputCallResponse()
            response.aggregatedPayloadSize = Int32(total)
            return response
        }
        router.registerBidirectionalStreaming(prefix + "FullDuplexCall") {
            (requests: MessageStream<Grpc_Testing_StreamingOutputCallRequest>,
             writer: ResponseWriter<Grpc_Testing_StreamingOutputCallResponse>, context) in
            Self.echoMetadata(context)
            for try await request in requests {
                try await Self.respond(to: request, with: writer)
            }
        }
        router.registerBidirectionalStreaming(prefix + "HalfDuplexCall") {
            (requests: MessageStream<Grpc_Testing_StreamingOutputCallRequest>,
             writer: ResponseWriter<Grpc_Testing_StreamingOutputCallResponse>, context) in
            Self.echoMetadata(context)
            var received: [Grpc_Testing_StreamingOutputCallRequest] = []
            for try await request in requests { received.append(request) }
            for request in received { try await Self.respond(to: request, with: writer) }
        }
    }

    private static func respond(
        to request: Grpc_Testing_StreamingOutputCallRequest, with writer: ResponseWriter<Grpc_Testing_StreamingOutputCallResponse>
    ) async throws {
        if request.hasResponseStatus { try failIfAsked(request.responseStatus) }
        for parameters in request.responseParameters {
            if parameters.intervalUs > 0 {
                try await Task.sleep(nanoseconds: UInt64(parameters.intervalUs) * 1_000)
            }
            var response = Grpc_Testing_StreamingOutputCallResponse()
            response.payload = payload(size: Int(parameters.size))
            try await writer.write(response)
        }
    }

    private static func failIfAsked(_ status: Grpc_Testing_EchoStatus) throws {
        guard status.code != 0 else { return }
        let code = StatusCode(rawValue: Int(status.code)) ?? .unknown
        throw RPCError(code, status.message)
    }

    private static func echoMetadata(_ context: ServerContext) {
        if let initial = context.metadata.first(echoInitialKey) {
            var metadata = context.initialMetadata
            metadata.add(echoInitialKey, initial)
            context.initialMetadata = metadata
        }
        if let trailing = context.metadata.first(echoTrailingKey) {
            var metadata = context.trailingMetadata
            metadata.add(echoTrailingKey, trailing)
            context.trailingMetadata = metadata
        }
    }

    public static func payload(size: Int) -> Grpc_Testing_Payload {
        var payload = Grpc_Testing_Payload()
        payload.body = Data(count: size)
        return payload
    }
}
