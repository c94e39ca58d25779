import Foundation
import Logging
import SwiftProtobuf
import TaskerEngine
import TaskerProto
import TaskerQueue

/// Carries step updates between the nodes on one Redis: this node's own go out on a pub/sub
/// channel, and the other nodes' come into this node's hub. Pub/sub keeps nothing, so an
/// update missed here (Redis restarting, say) is filled in from the stored history by the
/// watcher that notices the gap.
public final class UpdateRelay: Sendable {
    public static let channel = "tasker:updates"

    private let nodeID: String
    private let lane: RedisLane
    private let outgoing: AsyncStream<[Tasker_V1_StepUpdate]>.Continuation
    private let publisher: Task<Void, Never>
    private let subscription: SignalSubscription

    public init(url: RedisURL, nodeID: String, hub: UpdateHub, logger: Logger = Logger(label: "tasker.updates")) {
        self.nodeID = nodeID
        let lane = RedisLane(url: url)
        self.lane = lane
        let (stream, outgoing) = AsyncStream.makeStream(of: [Tasker_V1_StepUpdate].self)
        self.outgoing = outgoing
        // One at a time, in the order committed, so other nodes seldom see a task's updates
        // out of order.
        publisher = Task {
            for await updates in stream {
                do {
                    _ = try await lane.command(["PUBLISH", Self.channel, nodeID + " " + Self.encode(updates).base64EncodedString()])
                } catch {
                    logger.debug("updates not relayed", metadata: ["count": .stringConvertible(updates.count), "error": .string("\(error)")])
                }
            }
        }
        subscription = SignalSubscription(url: url, channel: Self.channel) { message in
            guard let space = message.firstIndex(of: " "), message[..<space] != nodeID,
                  let payload = Data(base64Encoded: String(message[message.index(after: space)...])),
                  let updates = try? Self.decode(payload)
            else { return }
            hub.deliver(updates)
        }
        hub.relay { outgoing.yield($0) }
    }

    /// Returns once other nodes' updates reach this node (or after a few seconds when Redis
    /// does not answer).
    public func waitUntilListening() async {
        await subscription.waitUntilSubscribed()
    }

    public func shutdown() async {
        outgoing.finish()
        await publisher.value
        await subscription.cancel()
        await lane.shutdown()
    }

    /// Each update as its length (a varint) and its bytes, the way a repeated field is framed.
    static func encode(_ updates: [Tasker_V1_StepUpdate]) throws -> Data {
        var data = Data()
        for update in updates {
            let bytes: Data = try update.serializedBytes()
            var length = UInt64(bytes.count)
            while length >= 0x80 {
                data.append(UInt8(length & 0x7F) | 0x80)
                length >>= 7
            }
            data.append(UInt8(length))
            data.append(bytes)
        }
        return data
    }

    static func decode(_ data: Data) throws -> [Tasker_V1_StepUpdate] {
        var updates: [Tasker_V1_StepUpdate] = []
        var index = data.startIndex
        while index < data.endIndex {
            var length = 0
            var shift = 0
            while true {
                guard index < data.endIndex, shift < 35 else { throw BinaryDecodingError.malformedProtobuf }
                let byte = data[index]
                index += 1
                length |= Int(byte & 0x7F) << shift
                shift += 7
                if byte < 0x80 { break }
            }
            guard data.endIndex - index >= length else { throw BinaryDecodingError.truncated }
            updates.append(try Tasker_V1_StepUpdate(serializedBytes: data[index..<index + length]))
            index += length
        }
        return updates
    }
}
