/// What admission decided for a batch of entries read from the streams.
public struct Admission: Sendable, Equatable {
    /// The (0-based) entries that wait, out of their streams: in a concurrency key's line, or
    /// parked until a rate limit has room.
    public var waiting: Set<Int> = []
    /// How long until the first of the rate-parked of this batch may go; nil when none is.
    public var nextRoom: Duration?
}

/// The check every limited step passes between being read and starting: one script for a batch,
/// so that no node sees a limit half-spent.
extension StepQueue {
    /// For each entry with limits: when a rate limit it names has no room, it leaves its
    /// stream and is parked until there is (giving back a concurrency place it held); else it
    /// takes a place of its concurrency key, or joins the key's line and leaves its stream;
    /// and an entry that may start spends its rate limits.
    public func admit(_ entries: [QueuedStep]) async throws -> Admission {
        var arguments = [Self.group]
        var limited: [Int] = []
        for (index, entry) in entries.enumerated() where entry.isLimited {
            limited.append(index)
            arguments += [entry.stepID, entry.limit?.key ?? "", String(entry.limit?.maxRunning ?? 0), entry.streamKey, entry.entryID,
                          entry.handler, String(entry.priority), entry.rates ?? "", entry.limit.map { Self.lineItem(entry, $0) } ?? ""]
        }
        var admission = Admission()
        guard !limited.isEmpty else { return admission }
        let reply = try await Self.admission.run(on: commands, keys: [], arguments: arguments).array
        var index = 0
        while index + 1 < reply.count {
            if let entry = reply[index].integer, let wait = reply[index + 1].integer {
                admission.waiting.insert(limited[entry - 1])
                if wait > 0 { admission.nextRoom = min(admission.nextRoom ?? .milliseconds(wait), .milliseconds(wait)) }
            }
            index += 2
        }
        return admission
    }

    /// Of these steps, about to start without going through their streams (a result made them
    /// ready, and a worker here has a slot), those that may: their concurrency keys have a free
    /// place and no line, and their rate limits room with no step parked for one, so that none
    /// overtakes a step already waiting. Those returned hold their places, taken at Redis's time
    /// now (`limitedKeys` judges such a place only once its start has had time to commit), and
    /// have spent their rates; the others are left as they were.
    public func admitAtOnce(_ steps: [(stepID: String, limit: ConcurrencyLimit?, rates: String?)]) async throws -> Set<String> {
        let arguments = steps.flatMap { [$0.stepID, $0.limit?.key ?? "", String($0.limit?.maxRunning ?? 0), $0.rates ?? ""] }
        guard !arguments.isEmpty else { return [] }
        let reply = try await Self.admissionAtOnce.run(on: commands, keys: [], arguments: arguments).array
        return Set(reply.compactMap { $0.integer.map { steps[$0 - 1].stepID } })
    }

    /// Which of these steps wait out of their streams on purpose, in a concurrency key's line
    /// or parked for a rate limit (the sweeper leaves them there). A rate-parked step whose
    /// time passed a minute ago is not counted: its wake was lost with Redis's data.
    public func parked(_ stepIDs: [String]) async throws -> Set<String> {
        guard !stepIDs.isEmpty else { return [] }
        let replies = try await commands.pipeline([["HMGET", Self.parkedKey] + stepIDs, ["HMGET", Self.rateWaitingKey] + stepIDs, ["TIME"]])
        let lines = try replies[0].get().array
        let waits = Self.rateWaits(stepIDs, try replies[1].get())
        let clock = try replies[2].get().array.compactMap { $0.string.flatMap(Double.init) }
        let now = clock.count == 2 ? clock[0] + clock[1] / 1e6 : 0
        return Set(zip(stepIDs, lines).filter { !$0.1.isNull }.map(\.0))
            .union(waits.filter { $0.value.at > now - 60 }.keys)
    }

    /// ARGV: the group, then per entry its step, concurrency key and limit ("" and "0" without),
    /// stream, entry id, handler, priority, rate limits ("" without) and line item. Returns,
    /// per entry that waits, its (1-based) place and how many ms until it has room (0 for one
    /// in a concurrency key's line).
    private static let admission = RedisScript(letNextGo + rateFunctions + """
        local group, out, n = ARGV[1], {}, 0
        local function leave(stream, entry)
            redis.call('XACK', stream, group, entry)
            redis.call('XDEL', stream, entry)
        end
        for i = 2, #ARGV, 9 do
            n = n + 1
            local step, key, max, stream, entry = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3], ARGV[i + 4]
            local handler, priority, rates, item = ARGV[i + 5], tonumber(ARGV[i + 6]), ARGV[i + 7], ARGV[i + 8]
            local limits = rates ~= '' and cjson.decode(rates) or nil
            local at, limiting = 0, nil
            if limits then at, limiting = roomAt(limits, {}) end
            local holders = key ~= '' and ('tasker:concurrency:' .. key) or nil
            if at > 0 then
                if holders and redis.call('HDEL', holders, step) == 1 then letNextGo(key, max) end
                parkForRate(cjson.encode({step, handler, priority, key, max, rates}), step, at, limiting)
                leave(stream, entry)
                out[#out + 1] = n
                out[#out + 1] = math.max(at - now, 1)
            else
                local admitted = true
                if holders then
                    redis.call('SADD', 'tasker:concurrency-keys', key)
                    if redis.call('HEXISTS', holders, step) == 0 then
                        if redis.call('HLEN', holders) < max then
                            redis.call('HSET', holders, step, '1')
                        else
                            redis.call('RPUSH', 'tasker:concurrency-waiting:' .. key, item)
                            redis.call('HSET', 'tasker:concurrency-parked', step, key)
                            leave(stream, entry)
                            out[#out + 1] = n
                            out[#out + 1] = 0
                            admitted = false
                        end
                    end
                end
                if admitted and limits then
                    spend(limits)
                    redis.call('HDEL', 'tasker:rate-waiting', step)
                end
            end
        end
        return out
        """)

    /// ARGV: per step its id, concurrency key and limit ("" and "0" without) and rate limits
    /// ("" without). Returns the (1-based) places of the steps admitted.
    private static let admissionAtOnce = RedisScript(rateFunctions + """
        local out, n, rateParked = {}, 0, nil
        for i = 1, #ARGV, 4 do
            n = n + 1
            local step, key, max, rates = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3]
            local holders = key ~= '' and ('tasker:concurrency:' .. key) or nil
            local fits = not holders
                or (redis.call('LLEN', 'tasker:concurrency-waiting:' .. key) == 0 and redis.call('HLEN', holders) < max)
            local limits = nil
            if fits and rates ~= '' then
                rateParked = rateParked or redis.call('ZCARD', 'tasker:rate-parked')
                limits = cjson.decode(rates)
                fits = rateParked == 0 and roomAt(limits, {}) == 0
            end
            if fits then
                if holders then
                    redis.call('SADD', 'tasker:concurrency-keys', key)
                    redis.call('HSET', holders, step, now)
                end
                if limits then spend(limits) end
                out[#out + 1] = n
            end
        end
        return out
        """)
}
