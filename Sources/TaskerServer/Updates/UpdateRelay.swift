import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
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
public final class UpdateRelay: UpdateForwarder, Service, Sendable {
    public static let channel = "tasker:updates"
    public static let watchingKey = "tasker:watching"
    /// How often this node says it has watchers and learns whether others have.
    static let interestInterval: Duration = .milliseconds(250)
    /// How long a node's word that it has watchers lasts.
    static let interestLifetime = 3.0

    private let url: RedisURL
    private let nodeID: String
    private let hub: UpdateHub
    private let logger: Logger
    private let lane: RedisLane
    private let outgoing: (stream: AsyncStream<[Tasker_V1_StepUpdate]>, continuation: AsyncStream<[Tasker_V1_StepUpdate]>.Continuation)
    private let announcements: (stream: AsyncStream<Void>, continuation: AsyncStream<Void>.Continuation)
    private let subscription = NIOLockedValueBox<ChannelSubscription?>(nil)
    private let others = NIOLockedValueBox(false)

    public init(url: RedisURL, nodeID: String, hub: UpdateHub, logger: Logger = Logger(label: "tasker.updates")) {
        self.url = url
        self.nodeID = nodeID
        self.hub = hub
        self.logger = logger
        lane = RedisLane(url: url)
        outgoing = AsyncStream.makeStream(of: [Tasker_V1_StepUpdate].self)
        announcements = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    public var othersWatching: Bool { others.withLockedValue { $0 } }

    public func forward(_ updates: [Tasker_V1_StepUpdate]) {
        outgoing.continuation.yield(updates)
    }

    public func watcherSubscribed() {
        announcements.continuation.yield()
    }

    /// Subscribes to the other nodes' updates and returns once they reach this node's hub (or
    /// after a few seconds when Redis does not answer); from then on this node's own go out.
    public func listen() async {
        let (nodeID, hub) = (self.nodeID, self.hub)
        let subscription = ChannelSubscription(url: url, channel: Self.channel) { message in
            guard let space = message.firstIndex(of: " "), message[..<space] != nodeID,
                  let payload = Data(base64Encoded: String(message[message.index(after: space)...])),
                  let updates = try? Self.decode(payload)
            else { return }
            hub.deliver(updates)
        }
        self.subscription.withLockedValue { $0 = subscription }
        await subscription.waitUntilSubscribed()
        hub.relay(to: self)
    }

    /// Publishes this node's updates and keeps its word on watchers current until graceful
    /// shutdown; then sends what is left, withdraws that word and unsubscribes.
    public func run() async {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.publishing() }
            group.addTask { await self.announcing() }
            group.addTask {
                while (try? await cancelWhenGracefulShutdown({ try await Task.sleep(for: Self.interestInterval) })) != nil {
                    self.announcements.continuation.yield()
                }
            }
            try? await gracefulShutdown()
            outgoing.continuation.finish()
            announcements.continuation.finish()
        }
        _ = try? await lane.command(["ZREM", Self.watchingKey, nodeID])
        await subscription.withLockedValue { $0 }?.cancel()
        await lane.shutdown()
    }

    /// One batch at a time, in the order committed, so other nodes seldom see a task's updates
    /// out of order.
    private func publishing() async {
        for await updates in outgoing.stream {
            do {
                _ = try await lane.command(["PUBLISH", Self.channel, nodeID + " " + Self.encode(updates).base64EncodedString()])
            } catch {
                logger.debug("updates not relayed", metadata: ["count": .stringConvertible(updates.count), "error": .string("\(error)")])
            }
        }
    }

    /// Says whether this node has watchers, and learns whether any other node has.
    private func announcing() async {
        var announced = false
        for await _ in announcements.stream {
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
