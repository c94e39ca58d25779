import Foundation

/// Rate limits shared by every node, in Redis. A key keeps a log of its spends (a sorted set by
/// Redis's time, each member naming its units) and their sum; a spend leaves the log once its
/// window has passed. An attempt starts only when every limit it names has room in the window
/// ending now; otherwise its step leaves its stream for the set of the rate-parked, scored by
/// when its limits have room again, and is let go back to its stream then (`wakeRateParked`).
///
/// A limit's window is its period and a margin of a twentieth of it (at most 1 s): a start
/// admitted here reaches its worker, and the system it calls, a little later and not always
/// equally so, and the margin keeps those later starts within the limit too.
///
/// Redis may lose all of it. A lost log forgets spends, so a limit may let through up to one
/// more period's worth; a lost parked set strands nothing, as the sweeper puts back an
/// ENQUEUED step that is in no stream and not parked. No state here ever blocks for good:
/// the log and its sum expire with their window, and a parked step is let go at its time.
extension StepQueue {
    static let rateParkedKey = "tasker:rate-parked"
    static let rateWaitingKey = "tasker:rate-waiting"

    /// Lua shared by admission and waking: Redis's time now, and the functions that measure,
    /// spend and wait for rate limits given as `[[key, limit, period ms, units], …]`.
    static let rateFunctions = """
        local clock = redis.call('TIME')
        local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)

        local function window(period) return period + math.min(math.floor(period / 20), 1000) end

        -- The units of `key` spent in the window ending now, once older spends are forgotten.
        local function spent(key, width)
            local log, sum = 'tasker:rate:' .. key, 'tasker:rate-used:' .. key
            local old = redis.call('ZRANGEBYSCORE', log, '-inf', now - width)
            local used = tonumber(redis.call('GET', sum) or '0')
            if #old > 0 then
                for _, member in ipairs(old) do used = used - tonumber(string.match(member, '|(%d+)$')) end
                redis.call('ZREMRANGEBYSCORE', log, '-inf', now - width)
                if used < 0 then used = 0 end
                redis.call('SET', sum, used, 'KEEPTTL')
            end
            return used
        end

        -- When `need` units of `key`'s log will have left its window.
        local function freedBy(key, width, need)
            local freed = 0
            local log = redis.call('ZRANGE', 'tasker:rate:' .. key, 0, need - 1, 'WITHSCORES')
            for i = 1, #log, 2 do
                freed = freed + tonumber(string.match(log[i], '|(%d+)$'))
                if freed >= need then return tonumber(log[i + 1]) + width end
            end
            return now + width
        end

        -- 0 when every limit has room for its units beside `extra` units of each key set aside;
        -- otherwise when the last of them will have, and that limit's key.
        local function roomAt(limits, extra)
            local at, limiting = 0, nil
            for _, limit in ipairs(limits) do
                local key, most, units = limit[1], limit[2], limit[4]
                local width = window(limit[3])
                local used = spent(key, width) + (extra[key] or 0)
                if used + units > most then
                    local free = freedBy(key, width, used + units - most)
                    if free > at then at, limiting = free, key end
                end
            end
            return at, limiting
        end

        local function spend(limits)
            for _, limit in ipairs(limits) do
                local key, units = limit[1], limit[4]
                local log, sum = 'tasker:rate:' .. key, 'tasker:rate-used:' .. key
                local width = window(limit[3])
                redis.call('ZADD', log, now, redis.call('INCR', 'tasker:rate-sequence') .. '|' .. units)
                redis.call('INCRBY', sum, units)
                redis.call('PEXPIRE', log, width + 1000)
                redis.call('PEXPIRE', sum, width + 1000)
            end
        end

        -- Parks a step until `at`, when `limiting` (the key it waits for) has room. `member`
        -- is what puts it back in its stream: [step, handler, priority, key, max, rates].
        local function parkForRate(member, step, at, limiting)
            redis.call('ZADD', 'tasker:rate-parked', at, member)
            redis.call('HSET', 'tasker:rate-waiting', step, cjson.encode({limiting, at}))
        end

        """

    /// Lets parked steps whose time has come go back to their streams, in order, as many as
    /// their limits have room for (the others wait on, for their next time). Any node may run
    /// it; each step goes once. Returns how many were let go, and how long until the next
    /// parked step's time (nil when none is parked).
    public func wakeRateParked(limit: Int = 500) async throws -> (woken: Int, next: Duration?) {
        let reply = try await Self.rateWake.run(on: commands, keys: [], arguments: [String(limit)]).array
        let woken = reply.first?.integer ?? 0
        let next = reply.count > 1 ? reply[1].integer : nil
        return (woken, next.flatMap { $0 >= 0 ? .milliseconds($0) : nil })
    }

    /// For steps waiting for a rate limit: the key each waits for and when it has room
    /// (Unix seconds).
    public func rateWaits(_ stepIDs: [String]) async throws -> [String: (key: String, at: Double)] {
        guard !stepIDs.isEmpty else { return [:] }
        return Self.rateWaits(stepIDs, try await commands.command(["HMGET", Self.rateWaitingKey] + stepIDs))
    }

    /// The waits of `stepIDs` from their HMGET of the rate-waiting hash: each value is
    /// `[key, time in ms]`; a step without one does not wait.
    static func rateWaits(_ stepIDs: [String], _ reply: RedisReply) -> [String: (key: String, at: Double)] {
        var waits: [String: (key: String, at: Double)] = [:]
        for (stepID, value) in zip(stepIDs, reply.array) {
            guard let text = value.string,
                  let pair = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [Any], pair.count == 2,
                  let key = pair[0] as? String, let at = pair[1] as? NSNumber
            else { continue }
            waits[stepID] = (key, at.doubleValue / 1000)
        }
        return waits
    }

    private static let rateWake = RedisScript(letNextGo + rateFunctions + """
        local due = redis.call('ZRANGEBYSCORE', 'tasker:rate-parked', '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
        local extra, woken = {}, 0
        for _, member in ipairs(due) do
            local parked = cjson.decode(member)
            local step, handler, priority, key, max, rates = parked[1], parked[2], parked[3], parked[4], parked[5], parked[6]
            local limits = cjson.decode(rates)
            local at, limiting = roomAt(limits, extra)
            if at > 0 then
                parkForRate(member, step, at, limiting)
            else
                for _, limit in ipairs(limits) do extra[limit[1]] = (extra[limit[1]] or 0) + limit[4] end
                redis.call('ZREM', 'tasker:rate-parked', member)
                redis.call('HDEL', 'tasker:rate-waiting', step)
                if key == '' then
                    redis.call('XADD', streamOf(handler, priority), '*', 'step', step, 'rates', rates)
                else
                    redis.call('XADD', streamOf(handler, priority), '*', 'step', step, 'key', key, 'max', tostring(max), 'rates', rates)
                end
                woken = woken + 1
            end
        end
        local first = redis.call('ZRANGE', 'tasker:rate-parked', 0, 0, 'WITHSCORES')
        if first[2] then return {woken, math.max(tonumber(first[2]) - now, 0)} end
        return {woken, -1}
        """)
}
