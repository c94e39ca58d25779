import Foundation
import NIOConcurrencyHelpers

/// A step to add to its handler's stream.
public struct ReadyStep: Sendable, Equatable {
    public let handler: String
    public let stepID: String
    /// Its task's, 1 (first) … 5 (last): which of the handler's streams takes it.
    public let priority: Int
    /// The concurrency limit an attempt of it takes a place of.
    public let limit: ConcurrencyLimit?
    /// The rate limits an attempt of it spends of, as JSON `[[key, limit, period in ms, units], …]`.
    public let rates: String?

    public init(handler: String, stepID: String, priority: Int = StepQueue.defaultPriority, limit: ConcurrencyLimit? = nil, rates: String? = nil) {
        self.handler = handler
        self.stepID = stepID
        self.priority = priority
        self.limit = limit
        self.rates = rates
    }
}

/// A step read from its handler's stream, not yet acknowledged.
public struct QueuedStep: Sendable, Equatable {
    public let handler: String
    public let stepID: String
    /// The stream entry, to acknowledge.
    public let entryID: String
    /// Which of the handler's streams it came from: its task's priority, 1 (first) … 5 (last).
    public let priority: Int
    public let limit: ConcurrencyLimit?
    public let rates: String?

    public init(
        handler: String, stepID: String, entryID: String, priority: Int = StepQueue.defaultPriority, limit: ConcurrencyLimit? = nil,
        rates: String? = nil
    ) {
        self.handler = handler
        self.stepID = stepID
        self.entryID = entryID
        self.priority = priority
        self.limit = limit
        self.rates = rates
    }

    /// The step, to add to its stream again.
    public var ready: ReadyStep { ReadyStep(handler: handler, stepID: stepID, priority: priority, limit: limit, rates: rates) }

    /// Whether admission has to check it against a limit before it starts.
    public var isLimited: Bool { limit != nil || rates != nil }

    /// The stream holding the entry.
    var streamKey: String { StepQueue.streamKey(handler, priority: priority) }
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

/// Ready steps in Redis, as dispatch uses them: a stream per handler and priority read through
/// one consumer group (every node a consumer), a sorted set of retries and delayed starts by
/// due time, and a pub/sub channel for signals between nodes. Redis may lose any of it:
/// Postgres is the truth and the sweeper puts back what went missing.
///
/// A read takes a handler's steps in priority order, each step ranked by its priority less one
/// for every `agingInterval` (60 s) it has waited in its stream (so a step of priority 5 ranks as 1
/// after four intervals), ties by when they were queued: one script, so every node sees the
/// same order.
public final class StepQueue: Sendable {
    public static let group = "tasker"
    public let url: RedisURL
    /// This node's name as a consumer of the streams.
    public let consumer: String
    let commands: RedisLane
    private let reader: RedisLane
    private let readBlock: Int
    /// Streams whose consumer group this node has made sure of.
    private let knownStreams = NIOLockedValueBox(Set<String>())

    public init(url: RedisURL, consumer: String, readBlockMilliseconds: Int = 500, agingInterval: Duration = .seconds(60)) {
        self.url = url
        self.agingInterval = agingInterval
        self.consumer = consumer
        readBlock = readBlockMilliseconds
        commands = RedisLane(url: url, timeoutSeconds: 5)
        reader = RedisLane(url: url, timeoutSeconds: Double(readBlockMilliseconds) / 1000 + 5)
    }

    public func shutdown() async {
        await commands.shutdown()
        await reader.shutdown()
    }

    public static let priorities = 1...5
    public static let defaultPriority = 3
    /// How long a ready step waits before it ranks one priority higher.
    public let agingInterval: Duration

    /// The stream of a handler's ready steps of one priority. The default priority's is the
    /// one every handler had before priorities.
    public static func streamKey(_ handler: String, priority: Int = defaultPriority) -> String {
        priority == defaultPriority ? "tasker:ready:\(handler)" : "tasker:ready-p\(priority):\(handler)"
    }

    /// The handler and priority of a stream key; nil for a key that is no stream of these.
    static func stream(ofKey key: String) -> (handler: String, priority: Int)? {
        if key.hasPrefix("tasker:ready:") { return (String(key.dropFirst("tasker:ready:".count)), defaultPriority) }
        guard key.hasPrefix("tasker:ready-p"), key.count > 16, let priority = Int(String(key.dropFirst(14).prefix(1))),
              priorities.contains(priority), key[key.index(key.startIndex, offsetBy: 15)] == ":" else { return nil }
        return (String(key.dropFirst(16)), priority)
    }

    public static let retriesKey = "tasker:retries"
    public static let signalsChannel = "tasker:signals"

    // MARK: Ready steps

    /// Adds steps to their handlers' streams (of their priorities) in one round trip.
    public func enqueue(_ steps: [ReadyStep]) async throws {
        guard !steps.isEmpty else { return }
        try Self.check(try await commands.pipeline(enqueueing(steps)), tolerating: "BUSYGROUP")
    }

    /// What committed transitions ask of the queue, in one round trip: `ready` steps join their
    /// streams (as `enqueue`), the places of `released` steps are given back (as `release`)
    /// and `retries` are scheduled (as `scheduleRetries`).
    public func update(
        ready: [ReadyStep], released: [(stepID: String, limit: ConcurrencyLimit)], retries: [(stepID: String, at: Double)]
    ) async throws {
        var batch = ready.isEmpty ? [] : enqueueing(ready)
        if !retries.isEmpty { batch.append(Self.scheduling(retries)) }
        if !released.isEmpty {
            try Self.check(try await Self.handOff.run(on: commands, after: batch, keys: [], arguments: Self.releaseArguments(released)),
                           tolerating: "BUSYGROUP")
        } else if !batch.isEmpty {
            try Self.check(try await commands.pipeline(batch), tolerating: "BUSYGROUP")
        }
    }

    /// The commands that put `steps` in their streams, creating the groups of streams not seen yet.
    private func enqueueing(_ steps: [ReadyStep]) -> [[String]] {
        var batch = groupsToCreate(Set(steps.map { Self.streamKey($0.handler, priority: $0.priority) }))
        for step in steps {
            var entry = ["XADD", Self.streamKey(step.handler, priority: step.priority), "*", "step", step.stepID]
            if let limit = step.limit { entry += ["key", limit.key, "max", String(limit.maxRunning)] }
            if let rates = step.rates { entry += ["rates", rates] }
            batch.append(entry)
        }
        return batch
    }

    /// Steps of the handlers named, up to how many of each are wanted, best ranked first;
    /// when none is ready, waits up to the read block for any (Redis then reads the largest
    /// count from every stream, so the caller keeps any extra).
    public func read(_ wanted: [String: Int]) async throws -> [QueuedStep] {
        let handlers = wanted.filter { $0.value > 0 }.keys.sorted()
        guard let count = wanted.values.max(), count > 0, !handlers.isEmpty else { return [] }
        let keys = handlers.flatMap { handler in Self.priorities.map { Self.streamKey(handler, priority: $0) } }
        let ranked = try await takeRanked(keys: keys, counts: handlers.map { wanted[$0]! })
        if !ranked.isEmpty { return ranked }
        let command = ["XREADGROUP", "GROUP", Self.group, consumer, "COUNT", String(count), "BLOCK", String(readBlock), "STREAMS"]
            + keys + keys.map { _ in ">" }
        let reply: RedisReply
        do {
            reply = try await reader.command(command)
        } catch RedisError.reply(let message) where message.hasPrefix("NOGROUP") {
            // The streams are new or Redis lost them: make them, then read from their start.
            knownStreams.withLockedValue { $0.subtract(keys) }
            try Self.check(try await commands.pipeline(groupsToCreate(Set(keys))), tolerating: "BUSYGROUP")
            reply = try await reader.command(command)
        }
        var steps: [QueuedStep] = []
        for stream in reply.array {
            let parts = stream.array
            guard parts.count == 2, let key = parts[0].string, let (handler, priority) = Self.stream(ofKey: key) else { continue }
            for entry in parts[1].array {
                let fields = entry.array
                guard fields.count == 2, let id = fields[0].string else { continue }
                let values = fields[1].array.compactMap(\.string)
                var named: [String: String] = [:]
                var at = 0
                while at + 1 < values.count {
                    named[values[at]] = values[at + 1]
                    at += 2
                }
                guard let stepID = named["step"] else { continue }
                steps.append(QueuedStep(
                    handler: handler, stepID: stepID, entryID: id, priority: priority,
                    limit: ConcurrencyLimit(key: named["key"], maxRunning: named["max"]), rates: named["rates"]))
            }
        }
        return steps
    }

    /// The best ranked steps ready now, without waiting: `keys` are each handler's five
    /// streams in priority order, `counts` how many of each handler are wanted.
    private func takeRanked(keys: [String], counts: [Int]) async throws -> [QueuedStep] {
        let arguments = [Self.group, consumer, String(max(agingInterval / .milliseconds(1), 1))] + counts.map(String.init)
        let reply = try await rankedRead.run(on: commands, keys: keys, arguments: arguments)
        let flat = reply.array
        var steps: [QueuedStep] = []
        steps.reserveCapacity(flat.count / 6)
        var index = 0
        while index + 5 < flat.count {
            if let key = flat[index].string, let (handler, priority) = Self.stream(ofKey: key), let id = flat[index + 1].string,
               let stepID = flat[index + 2].string {
                let rates = flat[index + 5].string
                steps.append(QueuedStep(
                    handler: handler, stepID: stepID, entryID: id, priority: priority,
                    limit: ConcurrencyLimit(key: flat[index + 3].string, maxRunning: flat[index + 4].string),
                    rates: rates?.isEmpty == false ? rates : nil))
            }
            index += 6
        }
        return steps
    }

    /// For each handler, its streams' next undelivered entries are ranked (priority less one
    /// per aging interval waited, then age, then priority), the best `count` are read for this
    /// consumer, and returned in rank order as stream key, entry id, step id, concurrency key
    /// and limit ("" and "0" without one) and rate limits ("" without).
    private let rankedRead = RedisScript("""
        local group, consumer, aging = ARGV[1], ARGV[2], tonumber(ARGV[3])
        local time = redis.call('TIME')
        local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
        local out = {}
        for h = 1, #ARGV - 3 do
            local want = tonumber(ARGV[3 + h])
            local heads, filled = {}, {}
            for p = 1, 5 do
                if redis.call('XLEN', KEYS[(h - 1) * 5 + p]) > 0 then filled[#filled + 1] = p end
            end
            -- One priority in use (the common case): its stream's order is the rank.
            local only = #filled == 1 and filled[1] or nil
            for p = 1, 5 do
                local key = KEYS[(h - 1) * 5 + p]
                if not only and redis.call('XLEN', key) > 0 then
                    local last
                    for _, info in ipairs(redis.call('XINFO', 'GROUPS', key)) do
                        local fields = {}
                        for i = 1, #info, 2 do fields[info[i]] = info[i + 1] end
                        if fields['name'] == group then last = fields['last-delivered-id'] end
                    end
                    if last then
                        for _, entry in ipairs(redis.call('XRANGE', key, '(' .. last, '+', 'COUNT', want)) do
                            local ms, sequence = string.match(entry[1], '^(%d+)-(%d+)$')
                            ms = tonumber(ms)
                            heads[#heads + 1] = {p - math.floor((now - ms) / aging), ms, p, entry[1], tonumber(sequence)}
                        end
                    end
                end
            end
            if not only then table.sort(heads, function(a, b)
                if a[1] ~= b[1] then return a[1] < b[1] end
                if a[2] ~= b[2] then return a[2] < b[2] end
                if a[3] ~= b[3] then return a[3] < b[3] end
                return a[5] < b[5]
            end) end
            local take, chosen = {0, 0, 0, 0, 0}, {}
            if only then
                take[only] = want
            else
                for i = 1, math.min(want, #heads) do
                    take[heads[i][3]] = take[heads[i][3]] + 1
                    chosen[i] = heads[i]
                end
            end
            local steps = {}
            for p = 1, 5 do
                if take[p] > 0 then
                    local key = KEYS[(h - 1) * 5 + p]
                    local ok, read = pcall(redis.call, 'XREADGROUP', 'GROUP', group, consumer, 'COUNT', take[p], 'STREAMS', key, '>')
                    if ok and read then
                        for _, entry in ipairs(read[1][2]) do
                            local values, fields = entry[2], {}
                            for i = 1, #values, 2 do fields[values[i]] = values[i + 1] end
                            if fields['step'] then
                                steps[p .. ' ' .. entry[1]] = {fields['step'], fields['key'] or '', fields['max'] or '0', fields['rates'] or ''}
                                if only then chosen[#chosen + 1] = {0, 0, p, entry[1]} end
                            end
                        end
                    end
                end
            end
            -- Entry ids are per stream: two streams can have the same one.
            for _, head in ipairs(chosen) do
                local step = steps[head[3] .. ' ' .. head[4]]
                if step then
                    out[#out + 1] = KEYS[(h - 1) * 5 + head[3]]
                    out[#out + 1] = head[4]
                    out[#out + 1] = step[1]
                    out[#out + 1] = step[2]
                    out[#out + 1] = step[3]
                    out[#out + 1] = step[4]
                end
            end
        end
        return out
        """)

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

    /// The state of a handler's stream of one priority as the consumer group sees it.
    public func state(of handler: String, priority: Int = defaultPriority) async throws -> ReadyStreamState {
        let key = Self.streamKey(handler, priority: priority)
        let groups: RedisReply
        do {
            groups = try await commands.command(["XINFO", "GROUPS", key])
        } catch RedisError.reply(let message) where message.contains("no such key") {
            knownStreams.withLockedValue { _ = $0.remove(key) }
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
        knownStreams.withLockedValue { _ = $0.remove(key) }
        return ReadyStreamState(exists: false, undelivered: 0, lastDeliveredMilliseconds: 0)
    }

    /// Entries of a handler delivered to some node more than `idleMilliseconds` ago and never
    /// acknowledged (that node died, or let them go): removed. Their steps, if still waiting,
    /// are put back by the sweeper from Postgres. Returns how many.
    @discardableResult
    public func dropAbandoned(of handler: String, idleMilliseconds: Int, limit: Int = 1000) async throws -> Int {
        var dropped = 0
        for priority in Self.priorities {
            dropped += try await dropAbandoned(key: Self.streamKey(handler, priority: priority), idleMilliseconds: idleMilliseconds, limit: limit)
        }
        return dropped
    }

    private func dropAbandoned(key: String, idleMilliseconds: Int, limit: Int) async throws -> Int {
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

    /// Schedules retries, and delayed first steps, at their due times (Unix seconds).
    public func scheduleRetries(_ retries: [(stepID: String, at: Double)]) async throws {
        guard !retries.isEmpty else { return }
        try await commands.command(Self.scheduling(retries))
    }

    private static func scheduling(_ retries: [(stepID: String, at: Double)]) -> [String] {
        var command = ["ZADD", retriesKey]
        for retry in retries { command += [String(Int64(retry.at * 1000)), retry.stepID] }
        return command
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

    private func groupsToCreate(_ keys: Set<String>) -> [[String]] {
        let missing = knownStreams.withLockedValue { known -> [String] in
            let missing = keys.subtracting(known).sorted()
            known.formUnion(missing)
            return missing
        }
        return missing.map { ["XGROUP", "CREATE", $0, Self.group, "0", "MKSTREAM"] }
    }

    static func check(_ replies: [Result<RedisReply, RedisError>], tolerating tolerated: String? = nil) throws {
        for reply in replies {
            if case .failure(let error) = reply {
                if case .reply(let message) = error, let tolerated, message.hasPrefix(tolerated) { continue }
                throw error
            }
        }
    }
}
