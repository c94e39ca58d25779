import Foundation
import NIOPosix
import TaskerDev
import Testing

@testable import TaskerQueue

@Suite(.timeLimit(.minutes(2))) struct RedisConnectionTests {
    @Test func urlsAreParsedOrRefusedWithTheReason() throws {
        #expect(try RedisURL(parsing: "redis://127.0.0.1:6380") == RedisURL(host: "127.0.0.1", port: 6380))
        #expect(try RedisURL(parsing: "redis://:secret@cache.internal/2") == RedisURL(host: "cache.internal", port: 6379, password: "secret", database: 2))
        #expect(try RedisURL(parsing: "redis://localhost") == RedisURL(host: "localhost"))
        #expect(throws: RedisError.invalidURL("'http://x' does not start with redis://")) { try RedisURL(parsing: "http://x") }
        #expect(throws: RedisError.invalidURL("port in 'redis://h:99999' is not a number from 1 to 65535")) { try RedisURL(parsing: "redis://h:99999") }
        #expect(throws: RedisError.invalidURL("database 'x' in 'redis://h/x' is not a number")) { try RedisURL(parsing: "redis://h/x") }
    }

    @Test func commandsPipelinesAndErrorReplies() async throws {
        let redis = try await blocking { try PrivateRedis() }
        let lane = RedisLane(url: try RedisURL(parsing: redis.url))
        #expect(try await lane.command(["SET", "greeting", "héllo wörld"]) == .status("OK"))
        #expect(try await lane.command(["GET", "greeting"]).string == "héllo wörld")
        #expect(try await lane.command(["GET", "missing"]).isNull)
        #expect(try await lane.command(["SET", "binary", "a\0b"]) == .status("OK"), "an argument may hold a NUL byte")
        #expect(try await lane.command(["STRLEN", "binary"]) == .integer(3))
        let replies = try await lane.pipeline([["INCR", "n"], ["INCRBY", "n", "41"], ["LPUSH", "greeting", "x"], ["LRANGE", "nothing", "0", "-1"]])
        #expect(try replies[0].get() == .integer(1))
        #expect(try replies[1].get() == .integer(42))
        guard case .failure(.reply(let message)) = replies[2] else { Issue.record("WRONGTYPE expected, got \(replies[2])"); return }
        #expect(message.hasPrefix("WRONGTYPE"))
        #expect(try replies[3].get() == .array([]))
        await lane.shutdown()
    }

    @Test func unavailableWhileDownAndConnectedAgainAfterARestart() async throws {
        let redis = try await blocking { try PrivateRedis() }
        let lane = RedisLane(url: try RedisURL(parsing: redis.url), timeoutSeconds: 2)
        #expect(try await lane.command(["PING"]) == .status("PONG"))
        try await blocking { redis.stop() }
        await #expect(throws: RedisError.self) { try await lane.command(["PING"]) }
        try await blocking { try redis.start() }
        #expect(try await lane.command(["PING"]) == .status("PONG"))
        await lane.shutdown()
    }

    @Test func anUnreachableServerIsUnavailableQuickly() async throws {
        let lane = RedisLane(url: RedisURL(host: "127.0.0.1", port: LocalPort.free()), timeoutSeconds: 5)
        // Timed on the lane's own thread: a loaded machine can keep the test's task from
        // resuming for seconds, which says nothing of the connection.
        let (outcome, seconds) = try await lane.run { connection -> (Result<RedisReply, RedisError>, Double) in
            let started = Date()
            let outcome = Result { () throws(RedisError) -> RedisReply in try connection.command(["PING"]) }
            return (outcome, Date().timeIntervalSince(started))
        }
        guard case .failure(.unavailable) = outcome else {
            Issue.record("unavailable expected, got \(outcome)")
            return
        }
        #expect(seconds < 2, "refused at once, not left to its 5 s timeout: \(seconds) s")
        await lane.shutdown()
    }
}

/// Runs blocking set-up (starting or stopping a server, initdb, redis-cli) on a pool of its
/// own, not on one of the few threads every test's async code shares. NIO's shared pool has a
/// thread per core: two tests' initdb would hold every other test's set-up behind them.
func blocking<Result: Sendable>(_ body: @escaping @Sendable () throws -> Result) async throws -> Result {
    try await blockingPool.runIfActive(body)
}

private let blockingPool: NIOThreadPool = {
    let pool = NIOThreadPool(numberOfThreads: 16)
    pool.start()
    return pool
}()
