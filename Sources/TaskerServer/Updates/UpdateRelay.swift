import Foundation
import Logging
import NIOConcurrencyHelpers
import SwiftProtobuf
import TaskerEngine
import TaskerProto
import TaskerQueue

/// Carries step updates between the nodes on one Redis: this node's own go out on a pub/sub
/// channel while any other node has watchers, and the other nodes' come into this node's
/// hub. Which nodes have watchers is kept in Redis (a sorted set of node ids by expiry), so
/// a cluster nobody watches makes and sends no updates at all.
///
/// Pub/sub keeps nothing: an update missed here (published before another node knew of
/// this node's watchers, or while Redis restarted) is filled in from the stored history by
/// the watcher that notices the gap, or after a quiet spell.
public final class UpdateRelay: UpdateForwarder, Sendable {
    public static let channel = "tasker:updates"
    public static let watchingKey = "tasker:watching"
    /// How often this node says it has watchers and learns whether others have.
    static let interestInterval: Duration = .milliseconds(250)
    /// How long a node's word that it has watchers lasts.
    static let interestLifetime = 3.0

    private let nodeID: String
    private let lane: RedisLane
    private let outgoing: AsyncStream<[Tasker_V1_StepUpdate]>.Continuation
    private let loops: [Task<Void, Never>]
    private let subscription: ChannelSubscription
    private let others = NIOLockedValueBox(false)
    private let announce: AsyncStream<Void>.Continuation

    public init(url: RedisURL, nodeID: String, hub: UpdateHub, logger: Logger = Logger(label: "tasker.updates")) {
        self.nodeID = nodeID
        let lane = RedisLane(url: url)
        self.lane = lane
        let (stream, outgoing) = AsyncStream.makeStream(of: [Tasker_V1_StepUpdate].self)
        self.outgoing = outgoing
        let (announcements, announce) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        self.announce = announce
        let others = self.others
        loops = [
            // One batch at a time, in the order committed, so other nodes seldom see a task's
            // updates out of order.
            Task {
                for await updates in stream {
                    do {
                        _ = try await lane.command(["PUBLISH", Self.channel, nodeID + " " + Self.encode(updates).base64EncodedString()])
                    } catch {
                        logger.debug("updates not relayed", metadata: ["count": .stringConvertible(updates.count), "error": .string("\(error)")])
                    }
                }
            },
            Task {
                let ticker = Task {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: Self.interestInterval)
                        announce.yield()
                    }
                }
                defer { ticker.cancel() }
                var announced = false
                for await _ in announcements {
                    let now = Date().timeIntervalSince1970
                    let watching = hub.watcherCount > 0
                    var commands = [["ZREMRANGEBYSCORE", Self.watchingKey, "-inf", String(now)]]
                    if watching {
                        commands.append(["ZADD", Self.watchingKey, String(now + Self.interestLifetime), nodeID])
                    } else if announced {
                        commands.append(["ZREM", Self.watchingKey, nodeID])
                    }
                    commands.append(["ZRANGE", Self.watchingKey, "0", "-1"])
                    guard let replies = try? await lane.pipeline(commands), let members = try? replies.last?.get().array else { continue }
                    announced = watching
                    others.withLockedValue { $0 = members.contains { $0.string != nodeID } }
                }
            },
        ]
        subscription = ChannelSubscription(url: url, channel: Self.channel) { message in
            guard let space = message.firstIndex(of: " "), message[..<space] != nodeID,
                  let payload = Data(base64Encoded: String(message[message.index(after: space)...])),
                  let updates = try? Self.decode(payload)
            else { return }
            hub.deliver(updates)
        }
        hub.relay(to: self)
    }

    public var othersWatching: Bool { others.withLockedValue { $0 } }

    public func forward(_ updates: [Tasker_V1_StepUpdate]) {
        outgoing.yield(updates)
    }

    public func watcherSubscribed() {
        announce.yield()
    }

    /// Returns once other nodes' updates reach this node (or after a few seconds when Redis
    /// does not answer).
    public func waitUntilListening() async {
        await subscription.waitUntilSubscribed()
    }

    public func shutdown() async {
        outgoing.finish()
        announce.finish()
        for loop in loops { await loop.value }
        _ = try? await lane.command(["ZREM", Self.watchingKey, nodeID])
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
