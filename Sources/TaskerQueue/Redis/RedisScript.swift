import NIOConcurrencyHelpers

/// A Lua script run by its digest (EVALSHA), so that its text crosses the wire once per Redis
/// rather than on every call; loaded again when Redis does not know it (a restart, a flush).
final class RedisScript: Sendable {
    let source: String
    private let digest = NIOLockedValueBox<String?>(nil)

    init(_ source: String) {
        self.source = source
    }

    /// The EVALSHA command that runs it, to send among others in a pipeline; nil while its
    /// digest is not known (it has not run yet): `run` it then.
    func command(keys: [String], arguments: [String]) -> [String]? {
        digest.withLockedValue { $0 }.map { ["EVALSHA", $0, String(keys.count)] + keys + arguments }
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
