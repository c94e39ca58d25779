import NIOPosix
import TaskerMetrics

/// A Redis connection with a thread of its own: commands given to a lane run one after the
/// other on that thread, off the event loops. A lane kept for a blocking read (XREADGROUP
/// BLOCK, SUBSCRIBE) holds nothing else up.
public final class RedisLane: Sendable {
    public let connection: RedisConnection
    private let thread: NIOThreadPool

    public init(url: RedisURL, timeoutSeconds: Double = 5) {
        connection = RedisConnection(url: url, timeoutSeconds: timeoutSeconds)
        thread = NIOThreadPool(numberOfThreads: 1)
        thread.start()
    }

    /// Runs `body` with the connection on the lane's thread.
    public func run<Result: Sendable>(_ body: @escaping @Sendable (RedisConnection) throws -> Result) async throws -> Result {
        let connection = self.connection
        do {
            return try await thread.runIfActive { try body(connection) }
        } catch {
            if error is RedisError { TaskerMetric.redisErrors().increment() }
            throw error
        }
    }

    @discardableResult
    public func command(_ arguments: [String]) async throws -> RedisReply {
        try await run { try $0.command(arguments) }
    }

    public func pipeline(_ commands: [[String]]) async throws -> [Result<RedisReply, RedisError>] {
        try await run { try $0.pipeline(commands) }
    }

    public func shutdown() async {
        let connection = self.connection
        _ = try? await thread.runIfActive { connection.close() }
        try? await thread.shutdownGracefully()
    }
}
