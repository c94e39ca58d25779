import Foundation
import NIOCore
import TaskerRPC

/// The standard gRPC interop cases this transport's client runs
/// (grpc/doc/interop-test-descriptions.md).
public enum InteropTestCase: String, CaseIterable, Sendable {
    case emptyUnary = "empty_unary"
    case largeUnary = "large_unary"
    case clientStreaming = "client_streaming"
    case serverStreaming = "server_streaming"
    case pingPong = "ping_pong"
    case emptyStream = "empty_stream"
    case customMetadata = "custom_metadata"
    case statusCodeAndMessage = "status_code_and_message"
    case specialStatusMessage = "special_status_message"
    case unimplementedMethod = "unimplemented_method"
    case unimplementedService = "unimplemented_service"
    case cancelAfterBegin = "cancel_after_begin"
    case cancelAfterFirstResponse = "cancel_after_first_response"
    case timeoutOnSleepingServer = "timeout_on_sleeping_server"

    public func run(using client: RPCClient) async throws {
        switch self {
        case .emptyUnary: try await emptyUnary(client)
        case .largeUnary: try await largeUnary(client)
        case .clientStreaming: try await clientStreaming(client)
        case .serverStreaming: try await serverStreaming(client)
        case .pingPong: try await pingPong(client)
        case .emptyStream: try await emptyStream(client)
        case .customMetadata: try await customMetadata(client)
        case .statusCodeAndMessage: try await statusCodeAndMessage(client)
        case .specialStatusMessage: try await specialStatusMessage(client)
        case .unimplementedMethod: try await unimplemented(client, path: "/grpc.testing.TestService/UnimplementedCall")
        case .unimplementedService: try await unimplemented(client, path: "/grpc.testing.UnimplementedService/UnimplementedCall")
        case .cancelAfterBegin: try await cancelAfterBegin(client)
        case .cancelAfterFirstResponse: try await cancelAfterFirstResponse(client)
        case .timeoutOnSleepingServer: try await timeoutOnSleepingServer(client)
        }
    }
}

/// A failed expectation of an interop case.
public struct InteropFailure: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

private func expect(_ condition: Bool, _ message: @autoclosure () -> String) throws {
    if !condition { throw InteropFailure(message()) }
}

private func expectStatus(_ code: StatusCode, message: String? = nil, _ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as RPCError {
        try expect(error.code == code, "expected \(code), got \(error.status)")
        if let message {
            try expect(error.message == message, "expected message \(message.debugDescription), got \(error.message.debugDescription)")
        }
        return
    }
    throw InteropFailure("expected \(code), but the call succeeded")
}

private let service = "/grpc.testing.TestService/"

private func outputRequest(size: Int32, payload: Int) -> Grpc_Testing_StreamingOutputCallRequest {
    var request = Grpc_Testing_StreamingOutputCallRequest()
    var parameters = Grpc_Testing_ResponseParameters()
    parameters.size = size
    request.responseParameters = [parameters]
    request.payload = TestService.payload(size: payload)
    return request
}

private func largeRequest() -> Grpc_Testing_SimpleRequest {
    var request = Grpc_Testing_SimpleRequest()
    request.responseSize = 314_159
    request.payload = TestService.payload(size: 271_828)
    return request
}

extension InteropTestCase {
    private func emptyUnary(_ client: RPCClient) async throws {
        let response = try await client.unary(service + "EmptyCall", Grpc_Testing_Empty(), as: Grpc_Testing_Empty.self)
        try expect(response == Grpc_Testing_Empty(), "EmptyCall returned a non-empty message")
    }

    private func largeUnary(_ client: RPCClient) async throws {
        let response = try await client.unary(service + "UnaryCall", largeRequest(), as: Grpc_Testing_SimpleResponse.self)
        try expect(response.payload.body.count == 314_159, "payload of \(response.payload.body.count) bytes, expected 314159")
        try expect(response.payload.body.allSatisfy { $0 == 0 }, "payload is not all zeros")
    }

    private func clientStreaming(_ client: RPCClient) async throws {
        let call = try await client.streaming(
            service + "StreamingInputCall", request: Grpc_Testing_StreamingInputCallRequest.self,
            response: Grpc_Testing_StreamingInputCallResponse.self)
        for size in [27182, 8, 1828, 45904] {
            var request = Grpc_Testing_StreamingInputCallRequest()
            request.payload = TestService.payload(size: size)
            try await call.send(request)
        }
        call.finishSending()
        let response = try await call.singleResponse()
        try expect(response.aggregatedPayloadSize == 74922, "aggregated size \(response.aggregatedPayloadSize), expected 74922")
    }

    private func serverStreaming(_ client: RPCClient) async throws {
        let sizes: [Int32] = [31415, 9, 2653, 58979]
        var request = Grpc_Testing_StreamingOutputCallRequest()
        request.responseParameters = sizes.map { size in
            var parameters = Grpc_Testing_ResponseParameters()
            parameters.size = size
            return parameters
        }
        let call = try await client.serverStreaming(
            service + "StreamingOutputCall", request, as: Grpc_Testing_StreamingOutputCallResponse.self)
        var received: [Int32] = []
        for try await response in call.responses { received.append(Int32(response.payload.body.count)) }
        try expect(received == sizes, "received sizes \(received), expected \(sizes)")
        let result = try await call.result
        try expect(result.status.code == .ok, "status \(result.status)")
    }

    private func pingPong(_ client: RPCClient) async throws {
        let call = try await client.streaming(
            service + "FullDuplexCall", request: Grpc_Testing_StreamingOutputCallRequest.self,
            response: Grpc_Testing_StreamingOutputCallResponse.self)
        var responses = call.responses.makeAsyncIterator()
        for (size, payload) in [(Int32(31415), 27182), (9, 8), (2653, 1828), (58979, 45904)] {
            try await call.send(outputRequest(size: size, payload: payload))
            guard let response = try await responses.next() else { throw InteropFailure("stream ended before the response to \(size)") }
            try expect(response.payload.body.count == size, "response of \(response.payload.body.count) bytes, expected \(size)")
        }
        call.finishSending()
        try expect(try await responses.next() == nil, "a response arrived after the last request")
        let result = try await call.result
        try expect(result.status.code == .ok, "status \(result.status)")
    }

    private func emptyStream(_ client: RPCClient) async throws {
        let call = try await client.streaming(
            service + "FullDuplexCall", request: Grpc_Testing_StreamingOutputCallRequest.self,
            response: Grpc_Testing_StreamingOutputCallResponse.self)
        call.finishSending()
        var count = 0
        for try await _ in call.responses { count += 1 }
        try expect(count == 0, "received \(count) responses on an empty stream")
        let result = try await call.result
        try expect(result.status.code == .ok, "status \(result.status)")
    }

    private func customMetadata(_ client: RPCClient) async throws {
        let initialValue = "test_initial_metadata_value"
        let trailingValue: [UInt8] = [0xAB, 0xAB, 0xAB]
        var metadata = Metadata()
        metadata.add("x-grpc-test-echo-initial", initialValue)
        metadata.add("x-grpc-test-echo-trailing-bin", bytes: trailingValue)

        let unary = try await client.unaryCall(
            service + "UnaryCall", largeRequest(), as: Grpc_Testing_SimpleResponse.self, metadata: metadata)
        try expect(unary.initialMetadata.firstString("x-grpc-test-echo-initial") == initialValue, "unary: initial metadata not echoed: \(unary.initialMetadata)")
        try expect(unary.trailingMetadata.firstBytes("x-grpc-test-echo-trailing-bin") == trailingValue, "unary: trailing metadata not echoed: \(unary.trailingMetadata)")

        let call = try await client.streaming(
            service + "FullDuplexCall", request: Grpc_Testing_StreamingOutputCallRequest.self,
            response: Grpc_Testing_StreamingOutputCallResponse.self, metadata: metadata)
        try await call.send(outputRequest(size: 314_159, payload: 271_828))
        call.finishSending()
        var sizes: [Int] = []
        for try await response in call.responses { sizes.append(response.payload.body.count) }
        try expect(sizes == [314_159], "full duplex: responses \(sizes)")
        let initial = try await call.initialMetadata
        let result = try await call.result
        try expect(initial.firstString("x-grpc-test-echo-initial") == initialValue, "full duplex: initial metadata not echoed: \(initial)")
        try expect(result.trailingMetadata.firstBytes("x-grpc-test-echo-trailing-bin") == trailingValue, "full duplex: trailing metadata not echoed: \(result.trailingMetadata)")
    }

    private func statusCodeAndMessage(_ client: RPCClient) async throws {
        let message = "test status message"
        var status = Grpc_Testing_EchoStatus()
        status.code = 2
        status.message = message
        var request = Grpc_Testing_SimpleRequest()
        request.responseStatus = status
        try await expectStatus(.unknown, message: message) {
            _ = try await client.unary(service + "UnaryCall", request, as: Grpc_Testing_SimpleResponse.self)
        }
        var streaming = Grpc_Testing_StreamingOutputCallRequest()
        streaming.responseStatus = status
        let call = try await client.streaming(
            service + "FullDuplexCall", request: Grpc_Testing_StreamingOutputCallRequest.self,
            response: Grpc_Testing_StreamingOutputCallResponse.self)
        try await call.send(streaming)
        call.finishSending()
        try await expectStatus(.unknown, message: message) {
            for try await _ in call.responses {}
        }
    }

    private func specialStatusMessage(_ client: RPCClient) async throws {
        let message = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n"
        var request = Grpc_Testing_SimpleRequest()
        request.responseStatus.code = 2
        request.responseStatus.message = message
        try await expectStatus(.unknown, message: message) {
            _ = try await client.unary(service + "UnaryCall", request, as: Grpc_Testing_SimpleResponse.self)
        }
    }

    private func unimplemented(_ client: RPCClient, path: String) async throws {
        try await expectStatus(.unimplemented) {
            _ = try await client.unary(path, Grpc_Testing_Empty(), as: Grpc_Testing_Empty.self)
        }
    }

    private func cancelAfterBegin(_ client: RPCClient) async throws {
        let call = try await client.streaming(
            service + "StreamingInputCall", request: Grpc_Testing_StreamingInputCallRequest.self,
            response: Grpc_Testing_StreamingInputCallResponse.self)
        call.cancel()
        try await expectStatus(.cancelled) { _ = try await call.singleResponse() }
    }

    private func cancelAfterFirstResponse(_ client: RPCClient) async throws {
        let call = try await client.streaming(
            service + "FullDuplexCall", request: Grpc_Testing_StreamingOutputCallRequest.self,
            response: Grpc_Testing_StreamingOutputCallResponse.self)
        try await call.send(outputRequest(size: 31415, payload: 27182))
        var responses = call.responses.makeAsyncIterator()
        let first = try await responses.next()
        try expect(first?.payload.body.count == 31415, "first response missing or of the wrong size")
        call.cancel()
        try await expectStatus(.cancelled) {
            while try await responses.next() != nil {}
        }
    }

    private func timeoutOnSleepingServer(_ client: RPCClient) async throws {
        let call = try await client.streaming(
            service + "FullDuplexCall", request: Grpc_Testing_StreamingOutputCallRequest.self,
            response: Grpc_Testing_StreamingOutputCallResponse.self, options: CallOptions(timeout: .milliseconds(1)))
        var request = Grpc_Testing_StreamingOutputCallRequest()
        request.payload = TestService.payload(size: 27182)
        // The deadline may pass before the send: either way the call must end DEADLINE_EXCEEDED.
        try? await call.send(request)
        try await expectStatus(.deadlineExceeded) {
            for try await _ in call.responses {}
        }
    }
}
