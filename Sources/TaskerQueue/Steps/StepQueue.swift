import Foundation
import NIOConcurrencyHelpers

/// A step read from its handler's stream, not yet acknowledged.
public struct QueuedStep: Sendable, Equatable {
    public let handler: String
    public let stepID: String
    /// The stream entry, to acknowledge.
    public let entryID: String
}

/// What a handler's stream says about the steps given to it, for the sweeper.
public struct ReadyStreamState: Sendable, Equatable {
    /// False when the stream or its consumer group is gone (Redis lost its data).
    public var exists: Bool
    /// Entries not yet delivered to any node.
    public var undelivered: Int
    /// When the newest delivered entry was added (Redis's clock, Unix milliseconds); 0 if none.
    public var lastDeliveredMilliseconds: UInt64
}

/// Ready steps in Redis, as dispatch uses them: a stream per handler read through one
/// consumer group (every node a consumer), a sorted set of retries by due time, and a
/// pub/sub channel for signals between nodes. Redis may lose any of it: Postgres is the
/// truth and the sweeper puts back what went missing.
public final class StepQueue: Sendable {
    public static let group = "tasker"
    public let url: RedisURL
    /// This node's name as a consumer of the streams.
    public let consumer: String
    private let commands: RedisLane
    private let reader: RedisLane
    private let readBlock: Int
    /// Handlers whose stream and group this node has made sure of.
    private let knownStreams = NIOLockedValueBox(Set<String>())

    public init(url: RedisURL, consumer: String, readBlockMilliseconds: Int = 500) {
        self.url = url
        self.consumer = consumer
        readBlock = readBlockMilliseconds
        commands = RedisLane(url: url, timeoutSeconds: 5)
        reader = RedisLane(url: url, timeoutSeconds: Double(readBlockMilliseconds) / 1000 + 5)
    }

    public func shutdown() async {
        await commands.shutdown()
        await reader.shutdown()
    }

    public static func streamKey(_ handler: String) -> String { "tasker:ready:\(handler)" }
    public static let retriesKey = "tasker:retries"
    public static let signalsChannel = "tasker:signals"

    // MARK: Ready steps

    /// Adds steps to their handlers' streams in one round trip.
    public func enqueue(_ steps: [(handler: String, stepID: String)]) async throws {
        guard !steps.isEmpty else { return }
        var batch = groupsToCreate(Set(steps.map(\.handler)))
        for step in steps {
            batch.append(["XADD", Self.streamKey(step.handler), "*", "step", step.stepID])
        }
        let replies = try await commands.pipeline(batch)
        try Self.check(replies, tolerating: "BUSYGROUP")
    }

    /// Waits up to the read block for steps of the handlers named (with how many of each are
    /// wanted; Redis reads the largest count from every stream, so the caller keeps any extra).
    public func read(_ wanted: [String: Int]) async throws -> [QueuedStep] {
        let handlers = wanted.filter { $0.value > 0 }.keys.sorted()
        guard let count = wanted.values.max(), count > 0, !handlers.isEmpty else { return [] }
        let command = ["XREADGROUP", "GROUP", Self.group, consumer, "COUNT", String(count), "BLOCK", String(readBlock), "STREAMS"]
            + handlers.map(Self.streamKey) + handlers.map { _ in ">" }
        let reply: RedisReply
        do {
            reply = try await reader.command(command)
        } catch RedisError.reply(let message) where message.hasPrefix("NOGROUP") {
            // The streams are new or Redis lost them: make them, then read from their start.
            knownStreams.withLockedValue { $0.subtract(handlers) }
            try Self.check(try await commands.pipeline(groupsToCreate(Set(handlers))), tolerating: "BUSYGROUP")
            reply = try await reader.command(command)
        }
        var steps: [QueuedStep] = []
        for stream in reply.array {
            let parts = stream.array
            guard parts.count == 2, let key = parts[0].string else { continue }
            let handler = String(key.dropFirst(Self.streamKey("").count))
            for entry in parts[1].array {
                let fields = entry.array
                guard fields.count == 2, let id = fields[0].string else { continue }
                let values = fields[1].array.compactMap(\.string)
                guard let index = values.firstIndex(of: "step"), index + 1 < values.count else { continue }
                steps.append(QueuedStep(handler: handler, stepID: values[index + 1], entryID: id))
            }
        }
        return steps
    }

    /// Acknowledges and removes entries whose steps were taken (or found stale).
    public func acknowledge(_ steps: [QueuedStep]) async throws {
        guard !steps.isEmpty else { return }
        var batch: [[String]] = []
        for (handler, entries) in Dictionary(grouping: steps, by: \.handler) {
            let ids = entries.map(\.entryID)
            batch.append(["XACK", Self.streamKey(handler), Self.group] + ids)
            batch.append(["XDEL", Self.streamKey(handler)] + ids)
        }
        try Self.check(try await commands.pipeline(batch))
    }

    /// The state of a handler's stream as the consumer group sees it.
    public func state(of handler: String) async throws -> ReadyStreamState {
        let groups: RedisReply
        do {
            groups = try await commands.command(["XINFO", "GROUPS", Self.streamKey(handler)])
        } catch RedisError.reply(let message) where message.contains("no such key") {
            knownStreams.withLockedValue { _ = $0.remove(handler) }
            return ReadyStreamState(exists: false, undelivered: 0, lastDeliveredMilliseconds: 0)
        }
        for group in groups.array {
            let fields = group.array
            var info: [String: RedisReply] = [:]
            var index = 0
            while index + 1 < fields.count {
                if let name = fields[index].string { info[name] = fields[index + 1] }
                index += 2
            }
            guard info["name"]?.string == Self.group else { continue }
            let lastDelivered = info["last-delivered-id"]?.string ?? "0-0"
            let milliseconds = UInt64(lastDelivered.split(separator: "-").first ?? "0") ?? 0
            // lag is null when Redis cannot tell (after deletions); count it as undelivered.
            let lag = info["lag"]?.integer ?? (info["lag"]?.isNull == true ? Int.max : 0)
            return ReadyStreamState(exists: true, undelivered: lag, lastDeliveredMilliseconds: milliseconds)
        }
        knownStreams.withLockedValue { _ = $0.remove(handler) }
        return ReadyStreamState(exists: false, undelivered: 0, lastDeliveredMilliseconds: 0)
    }

    /// Entries delivered to some node more than `idleMilliseconds` ago and never acknowledged
    /// (that node died, or let them go): removed. Their steps, if still waiting, are put back
    /// by the sweeper from Postgres. Returns how many.
    @discardableResult
    public func dropAbandoned(of handler: String, idleMilliseconds: Int, limit: Int = 1000) async throws -> Int {
        let key = Self.streamKey(handler)
        let pending: RedisReply
        do {
            pending = try await commands.command(["XPENDING", key, Self.group, "IDLE", String(idleMilliseconds), "-", "+", String(limit)])
        } catch RedisError.reply(let message) where message.hasPrefix("NOGROUP") || message.contains("no such key") {
            return 0
        }
        let ids = pending.array.compactMap { $0.array.first?.string }
        guard !ids.isEmpty else { return 0 }
        try Self.check(try await commands.pipeline([["XACK", key, Self.group] + ids, ["XDEL", key] + ids]))
        return ids.count
    }

    // MARK: Retries due later

    /// Schedules retries at their due times (Unix seconds).
    public func scheduleRetries(_ retries: [(stepID: String, at: Double)]) async throws {
        guard !retries.isEmpty else { return }
        var command = ["ZADD", Self.retriesKey]
        for retry in retries { command += [String(Int64(retry.at * 1000)), retry.stepID] }
        try await commands.command(command)
    }

    /// Takes up to `limit` retries due by `now` (Unix seconds) off the set: each is taken by one
    /// node only (a script runs whole).
    public func takeDueRetries(now: Double, limit: Int = 500) async throws -> [String] {
        let script = """
            local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
            if #due > 0 then redis.call('ZREM', KEYS[1], unpack(due)) end
            return due
            """
        let reply = try await commands.command(["EVAL", script, "1", Self.retriesKey, String(Int64(now * 1000)), String(limit)])
        return reply.array.compactMap(\.string)
    }

    // MARK: Signals between nodes

    public func publish(_ signal: NodeSignal) async throws {
        try await commands.command(["PUBLISH", Self.signalsChannel, signal.encoded])
    }

    /// Follows the signals every node publishes, from now on, this node's own included. A text
    /// on the channel that is not a signal is passed over.
    public func subscribeToSignals(_ onSignal: @escaping @Sendable (NodeSignal) -> Void) -> ChannelSubscription {
        ChannelSubscription(url: url, channel: Self.signalsChannel) { text in
            if let signal = NodeSignal(decoding: text) { onSignal(signal) }
        }
    }

    private func groupsToCreate(_ handlers: Set<String>) -> [[String]] {
        let missing = knownStreams.withLockedValue { known -> [String] in
            let missing = handlers.subtracting(known).sorted()
            known.formUnion(missing)
            return missing
        }
        return missing.map { ["XGROUP", "CREATE", Self.streamKey($0), Self.group, "0", "MKSTREAM"] }
    }

    private static func check(_ replies: [Result<RedisReply, RedisError>], tolerating tolerated: String? = nil) throws {
        for reply in replies {
            if case .failure(let error) = reply {
                if case .reply(let message) = error, let tolerated, message.hasPrefix(tolerated) { continue }
                throw error
            }
        }
    }
}
