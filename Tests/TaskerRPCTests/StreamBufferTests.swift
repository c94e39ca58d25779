import NIOConcurrencyHelpers
import NIOCore
import Testing

@testable import TaskerRPC

@Suite struct InboundMessageQueueTests {
    private func message(_ size: Int) -> ByteBuffer {
        ByteBuffer(repeating: 1, count: size)
    }

    @Test func throttlesAboveHighWaterAndReportsTheDrainOnce() async throws {
        let drains = NIOLockedValueBox(0)
        let queue = InboundMessageQueue(highWater: 100) { drains.withLockedValue { $0 += 1 } }
        #expect(queue.yield(message(60)))
        #expect(!queue.yield(message(60)), "120 bytes held is over the high-water mark")
        _ = try await queue.next()
        #expect(drains.withLockedValue { $0 } == 0, "60 bytes still held is above the low-water mark of 50")
        _ = try await queue.next()
        #expect(drains.withLockedValue { $0 } == 1)
        #expect(queue.yield(message(10)))
        _ = try await queue.next()
        #expect(drains.withLockedValue { $0 } == 1, "no second drain without a second throttle")
    }

    @Test func aFailureAfterTheMessagesIsDeliveredAfterThem() async throws {
        let queue = InboundMessageQueue(highWater: 1000) {}
        queue.yield(message(1))
        queue.yield(message(2))
        queue.finish(throwing: RPCError(.aborted, "stop"), discardingBuffered: false)
        #expect(try await queue.next()?.readableBytes == 1)
        #expect(try await queue.next()?.readableBytes == 2)
        await #expect(throws: RPCError.self) { try await queue.next() }
    }

    @Test func aDiscardingFailureComesAtOnce() async throws {
        let queue = InboundMessageQueue(highWater: 1000) {}
        queue.yield(message(1))
        queue.finish(throwing: RPCError(.cancelled, "gone"))
        await #expect(throws: RPCError.self) { try await queue.next() }
        queue.yield(message(1))
        await #expect(throws: RPCError.self) { try await queue.next() }
    }

    @Test func aWaitingReaderGetsTheNextMessageOrTheEnd() async throws {
        let queue = InboundMessageQueue(highWater: 1000) {}
        async let first = queue.next()
        try await Task.sleep(for: .milliseconds(20))
        queue.yield(message(5))
        #expect(try await first?.readableBytes == 5)
        async let end = queue.next()
        try await Task.sleep(for: .milliseconds(20))
        queue.finish()
        #expect(try await end == nil)
    }

    @Test func cancellingAWaitingReaderThrows() async throws {
        let queue = InboundMessageQueue(highWater: 1000) {}
        let reader = Task { try await queue.next() }
        try await Task.sleep(for: .milliseconds(20))
        reader.cancel()
        await #expect(throws: CancellationError.self) { try await reader.value }
    }
}

@Suite struct OutboundMessageBufferTests {
    @Test func readsInChunksDefersWhenEmptyAndEndsWithTrailers() throws {
        var buffer = OutboundMessageBuffer(allocator: ByteBufferAllocator())
        var target = [UInt8](repeating: 0, count: 4)
        let empty = target.withUnsafeMutableBytes { buffer.read(into: $0) }
        guard case .deferred = empty else { throw RPCError(.internal, "expected deferred, got \(empty)") }
        #expect(buffer.isDeferred)

        buffer.append(message: ByteBuffer(bytes: [9, 9]))
        let first = target.withUnsafeMutableBytes { buffer.read(into: $0) }
        guard case .bytes(4) = first else { throw RPCError(.internal, "expected 4 bytes, got \(first)") }
        #expect(target == [0, 0, 0, 0], "the 5-byte prefix of a 2-byte message starts with 0, 0, 0, 0")

        var trailers = HeaderBlock()
        trailers.add("grpc-status", "0")
        buffer.end(trailers: trailers)
        let last = target.withUnsafeMutableBytes { buffer.read(into: $0) }
        guard case .end(3, let sent?) = last else { throw RPCError(.internal, "expected the end, got \(last)") }
        #expect(sent.count == 1)
        #expect(Array(target.prefix(3)) == [2, 9, 9])
    }
}
