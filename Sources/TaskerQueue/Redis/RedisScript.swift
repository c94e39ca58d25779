import NIOConcurrencyHelpers

/// A Lua script run by its digest (EVALSHA), so that its text crosses the wire once per Redis
/// rather than on every call; loaded again when Redis does not know it (a restart, a flush).
final class RedisScript: Sendable {
    let source: String
    private let digest = NIOLockedValueBox<String?>(nil)

    init(_ source: String) {
        self.source = source
    }

    /// Runs it after `commands`, in one round trip once its digest is known (else, or when
    /// Redis forgot it, it runs apart as `run` does). Returns the replies of `commands`.
    func run(
        on lane: RedisLane, after commands: [[String]], keys: [String], arguments: [String]
    ) async throws -> [Result<RedisReply, RedisError>] {
        guard let known = digest.withLockedValue({ $0 }) else {
            let replies = commands.isEmpty ? [] : try await lane.pipeline(commands)
            _ = try await run(on: lane, keys: keys, arguments: arguments)
            return replies
        }
        var replies = try await lane.pipeline(commands + [["EVALSHA", known, String(keys.count)] + keys + arguments])
        switch replies.removeLast() {
        case .success:
            break
        case .failure(.reply(let message)) where message.hasPrefix("NOSCRIPT"):
            _ = try await run(on: lane, keys: keys, arguments: arguments)
        case .failure(let error):
            throw error
        }
        return replies
    }

    func run(on lane: RedisLane, keys: [String], arguments: [String]) async throws -> RedisReply {
        if let known = digest.withLockedValue({ $0 }) {
            do {
                return try await lane.command(["EVALSHA", known, String(keys.count)] + keys + arguments)
            } catch RedisError.reply(let message) where message.hasPrefix("NOSCRIPT") {
                // Loaded below.
            }
        }
        let loaded = try await lane.command(["SCRIPT", "LOAD", source])
        guard let known = loaded.string else { throw RedisError.reply("SCRIPT LOAD answered no digest") }
        digest.withLockedValue { $0 = known }
        return try await lane.command(["EVALSHA", known, String(keys.count)] + keys + arguments)
    }
}
