import NIOConcurrencyHelpers
import NIOCore
import SwiftProtobuf

/// Messages received on one stream, waiting for the task that reads them. The event loop
/// produces; one task consumes. The queue reports when it holds more than `highWater` bytes so
/// the producer stops returning flow-control window, and calls `onDrained` once the consumer has
/// brought it back under `lowWater`; that is how a slow reader throttles its peer.
final class InboundMessageQueue: @unchecked Sendable {
    private struct State {
        var messages = CircularBuffer<ByteBuffer>(initialCapacity: 2)
        var bufferedBytes = 0
        var end: Result<Void, any Error>?
        var waiter: CheckedContinuation<ByteBuffer?, any Error>?
        var producerThrottled = false
    }

    private let lock = NIOLockedValueBox(State())
    private let highWater: Int
    private let lowWater: Int
    private let onDrained: @Sendable () -> Void

    init(highWater: Int = 1 << 20, onDrained: @escaping @Sendable () -> Void) {
        self.highWater = highWater
        self.lowWater = highWater / 2
        self.onDrained = onDrained
    }

    /// Whether the producer is holding window back now.
    var isThrottled: Bool { lock.withLockedValue { $0.producerThrottled } }

    /// Adds a message; returns false when the producer should hold back window until drained.
    @discardableResult
    func yield(_ message: ByteBuffer) -> Bool {
        let (waiter, underWater): (CheckedContinuation<ByteBuffer?, any Error>?, Bool) = lock.withLockedValue { state in
            guard state.end == nil else { return (nil, true) }
            if let waiter = state.waiter {
                state.waiter = nil
                return (waiter, true)
            }
            state.messages.append(message)
            state.bufferedBytes += message.readableBytes
            if state.bufferedBytes > highWater {
                state.producerThrottled = true
                return (nil, false)
            }
            return (nil, true)
        }
        waiter?.resume(returning: message)
        return underWater
    }

    /// Ends the sequence after the buffered messages, with `nil` or `error`. With
    /// `discardingBuffered` the error comes at once: the messages are no longer wanted.
    func finish(throwing error: (any Error)? = nil, discardingBuffered: Bool = true) {
        let waiter: CheckedContinuation<ByteBuffer?, any Error>? = lock.withLockedValue { state in
            guard state.end == nil else { return nil }
            if let error {
                state.end = .failure(error)
                if discardingBuffered {
                    state.messages.removeAll()
                    state.bufferedBytes = 0
                }
            } else {
                state.end = .success(())
            }
            defer { state.waiter = nil }
            return state.waiter
        }
        guard let waiter else { return }
        if let error { waiter.resume(throwing: error) } else { waiter.resume(returning: nil) }
    }

    func next() async throws -> ByteBuffer? {
        enum Immediate { case message(ByteBuffer, drained: Bool), end(Result<Void, any Error>), wait }
        let immediate: Immediate = lock.withLockedValue { state in
            if let message = state.messages.popFirst() {
                state.bufferedBytes -= message.readableBytes
                let drained = state.producerThrottled && state.bufferedBytes <= lowWater
                if drained { state.producerThrottled = false }
                return .message(message, drained: drained)
            }
            if let end = state.end { return .end(end) }
            return .wait
        }
        switch immediate {
        case .message(let message, let drained):
            if drained { onDrained() }
            return message
        case .end(let end):
            try end.get()
            return nil
        case .wait:
            return try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { continuation in
                    // A message may have arrived since the first look.
                    let (ready, drained): (Result<ByteBuffer?, any Error>?, Bool) = lock.withLockedValue { state in
                        if let message = state.messages.popFirst() {
                            state.bufferedBytes -= message.readableBytes
                            let drained = state.producerThrottled && state.bufferedBytes <= lowWater
                            if drained { state.producerThrottled = false }
                            return (.success(message), drained)
                        }
                        if let end = state.end { return (end.map { nil }, false) }
                        if Task.isCancelled { return (.failure(CancellationError()), false) }
                        state.waiter = continuation
                        return (nil, false)
                    }
                    if drained { onDrained() }
                    if let ready { continuation.resume(with: ready) }
                }
            } onCancel: {
                let waiter = lock.withLockedValue { state in
                    defer { state.waiter = nil }
                    return state.waiter
                }
                waiter?.resume(throwing: CancellationError())
            }
        }
    }
}

/// The messages of one side of a call, decoded as they are read.
public struct MessageStream<Message: SwiftProtobuf.Message>: AsyncSequence, Sendable {
    let queue: InboundMessageQueue
    let side: MessageSide

    public struct AsyncIterator: AsyncIteratorProtocol {
        let queue: InboundMessageQueue
        let side: MessageSide

        public mutating func next() async throws -> Message? {
            guard let bytes = try await queue.next() else { return nil }
            return try Message(rpcBytes: bytes, as: side)
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(queue: queue, side: side)
    }
}
