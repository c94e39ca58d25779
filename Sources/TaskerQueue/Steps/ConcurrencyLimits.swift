/// A concurrency limit as the queue keeps it: at most `maxRunning` holders of `key` at once.
public struct ConcurrencyLimit: Sendable, Hashable {
    public let key: String
    public let maxRunning: Int

    public init(key: String, maxRunning: Int) {
        self.key = key
        self.maxRunning = maxRunning
    }

    /// From a stream entry's fields; nil without a limit.
    init?(key: String?, maxRunning: String?) {
        guard let key, !key.isEmpty, let max = maxRunning.flatMap(Int.init), max > 0 else { return nil }
        self.init(key: key, maxRunning: max)
    }
}

/// Concurrency limits shared by every node, in Redis. A key has a hash of its holders (steps
/// whose attempt runs, or is about to start), a list of the steps waiting for a place in the
/// order they came, and every waiting step is in one hash of the parked. A step read from its
/// stream takes a place (`admit`, in Admission) or joins its key's line, leaving the stream; an attempt that
/// ends gives its place back (`release`), which hands it to the first in line and puts that
/// step back in its stream, so that none overtakes another and none spends an attempt waiting.
/// Redis may lose all of it: `reconcile` rebuilds the holders from Postgres's running steps.
extension StepQueue {
    static let limitKeysKey = "tasker:concurrency-keys"
    static let parkedKey = "tasker:concurrency-parked"
    static func holdersKey(_ key: String) -> String { "tasker:concurrency:\(key)" }
    static func waitingKey(_ key: String) -> String { "tasker:concurrency-waiting:\(key)" }

    /// Gives back the places of these steps (an attempt ended, or a step left the queue), and
    /// hands each to the first in its key's line while the key has room.
    public func release(_ steps: [(stepID: String, limit: ConcurrencyLimit)]) async throws {
        guard !steps.isEmpty else { return }
        _ = try await Self.handOff.run(on: commands, keys: [], arguments: Self.releaseArguments(steps))
    }

    static func releaseArguments(_ steps: [(stepID: String, limit: ConcurrencyLimit)]) -> [String] {
        steps.flatMap { [$0.stepID, $0.limit.key, String($0.limit.maxRunning)] }
    }

    /// Every key with holders or a line: its holders and how many wait. A place `admitAtOnce`
    /// took less than `settling` seconds ago (by Redis's clock) is left out: the transaction
    /// starting its step may not have committed yet.
    public func limitedKeys(settling: Double = 0) async throws -> [(key: String, holders: [String], waiting: Int)] {
        let keys = try await commands.command(["SMEMBERS", Self.limitKeysKey]).array.compactMap(\.string)
        guard !keys.isEmpty else { return [] }
        let replies = try await commands.pipeline(
            [["TIME"]] + keys.flatMap { [["HGETALL", Self.holdersKey($0)], ["LLEN", Self.waitingKey($0)]] })
        let clock = try replies[0].get().array.compactMap { $0.string.flatMap(Double.init) }
        let settled = (clock.count == 2 ? clock[0] * 1000 + clock[1] / 1000 : 0) - settling * 1000
        return keys.enumerated().map { index, key in
            let fields = (try? replies[1 + index * 2].get())?.array.compactMap(\.string) ?? []
            // Each holder's value is when it took its place, in ms; "1" for places taken
            // while the step was in the queue, which need no such wait.
            let holders = stride(from: 0, to: fields.count - 1, by: 2)
                .filter { (Double(fields[$0 + 1]) ?? 0) <= settled }.map { fields[$0] }
            let waiting = (try? replies[2 + index * 2].get())?.integer ?? 0
            return (key, holders, waiting)
        }
    }

    /// Puts the holders right from what Postgres says: `stale` places (steps no longer
    /// running nor about to) are given back, which lets the next in line go; `running` steps
    /// the holders lack (Redis lost them) hold their places again; keys with no holder and no
    /// line are forgotten.
    public func reconcile(stale: [(stepID: String, limit: ConcurrencyLimit)], running: [(stepID: String, limit: ConcurrencyLimit)]) async throws {
        try await release(stale)
        guard !running.isEmpty else { return }
        var batch: [[String]] = []
        for (stepID, limit) in running {
            batch.append(["HSETNX", Self.holdersKey(limit.key), stepID, "1"])
            batch.append(["SADD", Self.limitKeysKey, limit.key])
        }
        try Self.check(try await commands.pipeline(batch))
    }

    /// Forgets keys with no holder and no line; lets the first in line go where a key has room
    /// (a place freed while its release was lost).
    public func tidyLimits() async throws {
        _ = try await Self.tidying.run(on: commands, keys: [], arguments: [])
    }

    /// A line item: the step, its priority, limit and handler, and its rate limits if it has
    /// any (after a NUL, which no handler holds).
    static func lineItem(_ entry: QueuedStep, _ limit: ConcurrencyLimit) -> String {
        "\(entry.stepID)|\(entry.priority)|\(limit.maxRunning)|\(entry.handler)" + (entry.rates.map { "\0" + $0 } ?? "")
    }

    /// Lets the first in `key`'s line go while it has room under `max`: it holds a place and
    /// goes back to its stream. Shared by the scripts that give places back and by admission.
    static let letNextGo = """
        local function streamOf(handler, priority)
            if tonumber(priority) == \(StepQueue.defaultPriority) then return 'tasker:ready:' .. handler end
            return 'tasker:ready-p' .. priority .. ':' .. handler
        end

        local function letNextGo(key, max)
            local holders, waiting = 'tasker:concurrency:' .. key, 'tasker:concurrency-waiting:' .. key
            while redis.call('HLEN', holders) < max do
                local item = redis.call('LPOP', waiting)
                if not item then return end
                local step, priority, limit, handler, rates = string.match(item, '^([^|]*)|(%d)|(%d+)|([^%z]*)%z?(.*)$')
                if step then
                    redis.call('HSET', holders, step, '1')
                    redis.call('HDEL', 'tasker:concurrency-parked', step)
                    if rates == '' then
                        redis.call('XADD', streamOf(handler, priority), '*', 'step', step, 'key', key, 'max', limit)
                    else
                        redis.call('XADD', streamOf(handler, priority), '*', 'step', step, 'key', key, 'max', limit, 'rates', rates)
                    end
                end
            end
        end

        """

    /// ARGV: per release a step, its key and limit.
    static let handOff = RedisScript(letNextGo + """
        for i = 1, #ARGV, 3 do
            redis.call('HDEL', 'tasker:concurrency:' .. ARGV[i + 1], ARGV[i])
            letNextGo(ARGV[i + 1], tonumber(ARGV[i + 2]))
        end
        return 0
        """)

    private static let tidying = RedisScript(letNextGo + """
        for _, key in ipairs(redis.call('SMEMBERS', 'tasker:concurrency-keys')) do
            local first = redis.call('LINDEX', 'tasker:concurrency-waiting:' .. key, 0)
            if first then
                local limit = string.match(first, '^[^|]*|%d|(%d+)|')
                if limit then letNextGo(key, tonumber(limit)) end
            elseif redis.call('HLEN', 'tasker:concurrency:' .. key) == 0 then
                redis.call('SREM', 'tasker:concurrency-keys', key)
            end
        end
        return 0
        """)
}
