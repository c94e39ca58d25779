import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import TaskerInterop
import Testing

@testable import TaskerRPC

/// What handlers saw, in order: "cancelled", "finished", counts of writes…
final class EventLog: Sendable {
    private let entries = NIOLockedValueBox<[String]>([])

    func yield(_ event: String) {
        entries.withLockedValue { $0.append(event) }
    }

    var all: [String] { entries.withLockedValue { $0 } }

    /// The first event matching `predicate`, waiting up to `timeout` for it.
    func first(within timeout: Duration = .seconds(10), where predicate: (String) -> Bool) async -> String? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let match = all.first(where: predicate) { return match }
            if ContinuousClock.now >= deadline { return nil }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }
}

/// Methods whose behaviour the transport tests observe from the server's side.
struct ProbeService: RPCService {
    let events: EventLog

    func register(into router: inout RPCRouter) {
        router.registerUnary("/tasker.test.Probe/Sleep") { (request: Grpc_Testing_SimpleRequest, _) in
            events.yield("sleeping")
            do {
                try await Task.sleep(nanoseconds: UInt64(request.responseSize) * 1_000_000)
                events.yield("finished")
            } catch {
                events.yield("cancelled")
                throw error
            }
            return Grpc_Testing_SimpleResponse()
        }
        router.registerUnary("/tasker.test.Probe/WhoAmI") { (_: Grpc_Testing_Empty, context) -> Grpc_Testing_SimpleResponse in
            events.yield("who am i ran")
            return .with { $0.username = context.caller as? String ?? "nobody" }
        }
        router.registerUnary("/tasker.test.Probe/Fail") { (_: Grpc_Testing_Empty, _) -> Grpc_Testing_Empty in
            struct Boom: Error, CustomStringConvertible { var description: String { "boom" } }
            throw Boom()
        }
        router.registerBidirectionalStreaming("/tasker.test.Probe/Hold") {
            (requests: MessageStream<Grpc_Testing_Empty>, writer: ResponseWriter<Grpc_Testing_Empty>, _) in
            do {
                for try await _ in requests { try await writer.write(Grpc_Testing_Empty()) }
                events.yield("finished")
            } catch {
                events.yield("cancelled")
                throw error
            }
        }
        router.registerServerStreaming("/tasker.test.Probe/Flood") {
            (request: Grpc_Testing_SimpleRequest, writer: ResponseWriter<Grpc_Testing_SimpleResponse>, _) in
            var response = Grpc_Testing_SimpleResponse()
            response.payload = TestService.payload(size: Int(request.responseSize))
            var written = 0
            do {
                for _ in 0..<10_000 {
                    try await writer.write(response)
                    written += 1
                    events.yield("wrote \(written)")
                }
            } catch {
                events.yield("stopped after \(written)")
                throw error
            }
        }
    }
}

/// A server with TestService and ProbeService on a free port, and a client connected to it.
struct Harness {
    let server: RPCServer
    let client: RPCClient
    let events: EventLog

    static func start(configure: (inout RPCServer.Configuration) -> Void = { _ in }) async throws -> Harness {
        let events = EventLog()
        var configuration = RPCServer.Configuration(host: "127.0.0.1", port: 0)
        configure(&configuration)
        let server = try await RPCServer.start(
            configuration: configuration, services: [TestService(), ProbeService(events: events)])
        return Harness(server: server, client: RPCClient(host: "127.0.0.1", port: server.port), events: events)
    }

    func stop() async {
        await client.close()
        await server.shutdownNow()
    }

    func nextEvent(within timeout: Duration = .seconds(10), where predicate: (String) -> Bool) async -> String? {
        await events.first(within: timeout, where: predicate)
    }
}

func expectRPCError(_ code: StatusCode, _ body: () async throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) async -> RPCError? {
    do {
        try await body()
        Issue.record("expected \(code), but the call succeeded", sourceLocation: sourceLocation)
    } catch let error as RPCError {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected RPCError \(code), got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

@Suite(.timeLimit(.minutes(2))) struct TransportTests {
    @Test func interopCasesPassAgainstTheInProcessServer() async throws {
        let harness = try await Harness.start()
        for testCase in InteropTestCase.allCases {
            do {
                try await testCase.run(using: harness.client)
            } catch {
                Issue.record("\(testCase.rawValue): \(error)")
            }
        }
        await harness.stop()
    }

    @Test func manyConcurrentCallsShareOneConnection() async throws {
        let harness = try await Harness.start()
        let client = harness.client
        let sizes = try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<300 {
                group.addTask {
                    var request = Grpc_Testing_SimpleRequest()
                    request.responseSize = Int32(index)
                    let response = try await client.unary(
                        "/grpc.testing.TestService/UnaryCall", request, as: Grpc_Testing_SimpleResponse.self)
                    return response.payload.body.count
                }
            }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(sizes.sorted() == Array(0..<300))
        #expect(harness.server.connectionCount == 1)
        await harness.stop()
    }

    @Test func callsRacingAServerShutdownEndUnavailableNotInACrash() async throws {
        for _ in 0..<30 {
            let harness = try await Harness.start()
            let client = harness.client
            _ = try await client.unary("/grpc.testing.TestService/UnaryCall", Grpc_Testing_SimpleRequest(), as: Grpc_Testing_SimpleResponse.self)
            async let shutdown: Void = harness.server.shutdownNow()
            for _ in 0..<20 {
                do {
                    _ = try await client.unary("/grpc.testing.TestService/UnaryCall", Grpc_Testing_SimpleRequest(), as: Grpc_Testing_SimpleResponse.self)
                } catch let error as RPCError {
                    #expect([.unavailable, .cancelled].contains(error.code), "\(error)")
                }
            }
            await shutdown
            await client.close()
        }
    }

    @Test func deadlineEndsTheCallAndCancelsTheHandler() async throws {
        let harness = try await Harness.start()
        var request = Grpc_Testing_SimpleRequest()
        request.responseSize = 10_000
        let started = ContinuousClock.now
        await expectRPCError(.deadlineExceeded) {
            _ = try await harness.client.unary(
                "/tasker.test.Probe/Sleep", request, as: Grpc_Testing_SimpleResponse.self,
                options: CallOptions(timeout: .milliseconds(200)))
        }
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(await harness.nextEvent { $0 == "cancelled" } == "cancelled")
        await harness.stop()
    }

    @Test func clientCancellationReachesTheHandler() async throws {
        let harness = try await Harness.start()
        let call = try await harness.client.streaming(
            "/tasker.test.Probe/Hold", request: Grpc_Testing_Empty.self, response: Grpc_Testing_Empty.self)
        try await call.send(Grpc_Testing_Empty())
        var responses = call.responses.makeAsyncIterator()
        #expect(try await responses.next() != nil)
        call.cancel()
        await expectRPCError(.cancelled) { while try await responses.next() != nil {} }
        #expect(await harness.nextEvent { $0 == "cancelled" } == "cancelled")
        await harness.stop()
    }

    @Test func oversizedRequestIsResourceExhaustedAndTheConnectionLives() async throws {
        let harness = try await Harness.start()
        var request = Grpc_Testing_SimpleRequest()
        request.payload = TestService.payload(size: 5 << 20)
        let error = await expectRPCError(.resourceExhausted) {
            _ = try await harness.client.unary("/grpc.testing.TestService/UnaryCall", request, as: Grpc_Testing_SimpleResponse.self)
        }
        #expect(error?.message.contains("exceeds the receive limit of 4194304 bytes") == true)
        _ = try await harness.client.unary("/grpc.testing.TestService/EmptyCall", Grpc_Testing_Empty(), as: Grpc_Testing_Empty.self)
        #expect(harness.server.connectionCount == 1)
        await harness.stop()
    }

    @Test func aClientThatStopsReadingThrottlesTheHandler() async throws {
        let harness = try await Harness.start()
        var request = Grpc_Testing_SimpleRequest()
        request.responseSize = 64 << 10
        let call = try await harness.client.serverStreaming(
            "/tasker.test.Probe/Flood", request, as: Grpc_Testing_SimpleResponse.self)
        var responses = call.responses.makeAsyncIterator()
        _ = try await responses.next()
        // Not reading now: the handler must stall once the windows and buffers are full.
        try await Task.sleep(for: .milliseconds(800))
        let writesBefore = harness.events.all.filter { $0.hasPrefix("wrote") }.count
        try await Task.sleep(for: .milliseconds(400))
        let lastWrite = harness.events.all.filter { $0.hasPrefix("wrote") }.count
        #expect(lastWrite > 0)
        #expect(lastWrite == writesBefore, "the handler kept writing while the client did not read")
        // What the client holds unread before its window closes (a message past its receive
        // buffer), what the window lets through after that, and the server's send buffer (a
        // message past it): the socket holds nothing beyond, since nghttp2 sends only within
        // the window. Plus the message read, and one whose write returned as the buffer filled.
        let client = RPCClient.Configuration(), server = RPCServer.Configuration(host: "127.0.0.1", port: 0)
        let message = 64 << 10
        let budget = (client.streamReceiveBufferSize + Int(client.streamWindowSize) + server.streamSendBufferSize) / message + 4
        #expect(lastWrite <= budget, "the handler wrote \(lastWrite) messages of 64 KiB to a client that did not read; \(budget) fit")
        call.cancel()
        #expect(await harness.nextEvent { $0.hasPrefix("stopped") } != nil)
        await harness.stop()
    }

    /// A gate that knows one key; the transport runs it before every handler.
    struct KeyGate: CallGate {
        func admit(_ context: ServerContext) async throws -> (any Sendable)? {
            switch context.metadata.firstString("x-key") {
            case "alice-key": return "alice"
            case nil: throw RPCError(.unauthenticated, "no key")
            default: throw RPCError(.permissionDenied, "not this key")
            }
        }
    }

    @Test func aGateRunsBeforeEveryHandlerAndItsRefusalIsTheStatus() async throws {
        let harness = try await Harness.start { $0.gate = KeyGate() }
        let answer = try await harness.client.unary(
            "/tasker.test.Probe/WhoAmI", Grpc_Testing_Empty(), as: Grpc_Testing_SimpleResponse.self, metadata: ["x-key": .string("alice-key")])
        #expect(answer.username == "alice", "the handler sees whom the gate admitted")
        let missing = await expectRPCError(.unauthenticated) {
            _ = try await harness.client.unary("/tasker.test.Probe/WhoAmI", Grpc_Testing_Empty(), as: Grpc_Testing_SimpleResponse.self)
        }
        #expect(missing?.message == "no key")
        await expectRPCError(.permissionDenied) {
            _ = try await harness.client.unary(
                "/tasker.test.Probe/WhoAmI", Grpc_Testing_Empty(), as: Grpc_Testing_SimpleResponse.self, metadata: ["x-key": .string("bob-key")])
        }
        // A stream refused by the gate ends with the status and never reaches its handler.
        let call = try await harness.client.streaming(
            "/tasker.test.Probe/Hold", request: Grpc_Testing_Empty.self, response: Grpc_Testing_Empty.self)
        await expectRPCError(.unauthenticated) { for try await _ in call.responses {} }
        #expect(harness.events.all.filter { $0 == "who am i ran" }.count == 1, "refused calls never ran their handler")
        #expect(!harness.events.all.contains("finished") && !harness.events.all.contains("cancelled"))
        await harness.stop()
    }

    @Test func unknownMethodsAndServicesAreUnimplemented() async throws {
        let harness = try await Harness.start()
        let method = await expectRPCError(.unimplemented) {
            _ = try await harness.client.unary("/grpc.testing.TestService/Nope", Grpc_Testing_Empty(), as: Grpc_Testing_Empty.self)
        }
        #expect(method?.message.contains("/grpc.testing.TestService/Nope") == true)
        let service = await expectRPCError(.unimplemented) {
            _ = try await harness.client.unary("/no.Such/Call", Grpc_Testing_Empty(), as: Grpc_Testing_Empty.self)
        }
        #expect(service?.message.contains("no.Such") == true)
        await harness.stop()
    }

    @Test func aHandlerErrorBecomesUnknownWithItsDescription() async throws {
        let harness = try await Harness.start()
        let error = await expectRPCError(.unknown) {
            _ = try await harness.client.unary("/tasker.test.Probe/Fail", Grpc_Testing_Empty(), as: Grpc_Testing_Empty.self)
        }
        #expect(error?.message.contains("boom") == true)
        await harness.stop()
    }

    @Test func healthCheckAndWatch() async throws {
        let harness = try await Harness.start()
        let check = try await harness.client.unary(
            "/grpc.health.v1.Health/Check", Grpc_Health_V1_HealthCheckRequest(), as: Grpc_Health_V1_HealthCheckResponse.self)
        #expect(check.status == .serving)
        var named = Grpc_Health_V1_HealthCheckRequest()
        named.service = "grpc.testing.TestService"
        #expect(try await harness.client.unary("/grpc.health.v1.Health/Check", named, as: Grpc_Health_V1_HealthCheckResponse.self).status == .serving)
        named.service = "nope"
        await expectRPCError(.notFound) {
            _ = try await harness.client.unary("/grpc.health.v1.Health/Check", named, as: Grpc_Health_V1_HealthCheckResponse.self)
        }

        let watch = try await harness.client.serverStreaming(
            "/grpc.health.v1.Health/Watch", Grpc_Health_V1_HealthCheckRequest(), as: Grpc_Health_V1_HealthCheckResponse.self)
        var updates = watch.responses.makeAsyncIterator()
        #expect(try await updates.next()?.status == .serving)
        harness.server.health.setStatus(.notServing)
        #expect(try await updates.next()?.status == .notServing)
        watch.cancel()
        await harness.stop()
    }

    @Test func gracefulShutdownFinishesInFlightCallsAndRefusesNewOnes() async throws {
        let harness = try await Harness.start()
        let client = harness.client
        var slow = Grpc_Testing_SimpleRequest()
        slow.responseSize = 2000
        async let inFlight = client.unary("/tasker.test.Probe/Sleep", slow, as: Grpc_Testing_SimpleResponse.self)
        // In flight means the server runs it: a call still on its way when the GOAWAY goes is refused.
        #expect(await harness.events.first { $0 == "sleeping" } != nil)
        let shutdown = Task { await harness.server.shutdownGracefully() }
        // Once the GOAWAY has reached the client (how soon depends on the machine's load),
        // new calls are refused while the one in flight carries on.
        var refused: RPCError?
        let deadline = ContinuousClock.now + .seconds(5)
        while refused == nil, ContinuousClock.now < deadline {
            do {
                _ = try await client.unary("/grpc.testing.TestService/EmptyCall", Grpc_Testing_Empty(), as: Grpc_Testing_Empty.self)
                try await Task.sleep(for: .milliseconds(10))
            } catch let error as RPCError {
                refused = error
            }
        }
        #expect(refused?.code == .unavailable, "\(String(describing: refused))")
        _ = try await inFlight
        await shutdown.value
        #expect(harness.server.connectionCount == 0)
        await client.close()
    }
}
