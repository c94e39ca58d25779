import CHiredis
import Foundation

/// One hiredis connection. Every call blocks, so it is used only from a thread of its own
/// (a `RedisLane`'s), never on an event loop, and by one thread at a time (hence the unchecked
/// Sendable). A connection broken by a Redis restart is opened again on its next use.
public final class RedisConnection: @unchecked Sendable {
    private var context: UnsafeMutablePointer<redisContext>?
    public let url: RedisURL
    /// How long a command may wait for its reply; a blocking read must ask for less.
    public let timeoutSeconds: Double

    public init(url: RedisURL, timeoutSeconds: Double = 5) {
        self.url = url
        self.timeoutSeconds = timeoutSeconds
    }

    deinit {
        if let context { redisFree(context) }
    }

    public var isConnected: Bool { context.map { $0.pointee.err == 0 } ?? false }

    /// Runs one command; an error reply is thrown as `RedisError.reply`.
    @discardableResult
    public func command(_ arguments: [String]) throws(RedisError) -> RedisReply {
        try pipeline([arguments])[0].get()
    }

    /// Sends the commands in one write and reads their replies in order: one round trip.
    /// Each reply is either a value or the error Redis answered that command with.
    public func pipeline(_ commands: [[String]]) throws(RedisError) -> [Result<RedisReply, RedisError>] {
        let context = try connected()
        for arguments in commands {
            let status = Self.withArguments(arguments) { count, values, lengths in
                redisAppendCommandArgv(context, count, values, lengths)
            }
            guard status == REDIS_OK else { throw broken(context) }
        }
        var replies: [Result<RedisReply, RedisError>] = []
        replies.reserveCapacity(commands.count)
        for _ in commands {
            var raw: UnsafeMutableRawPointer?
            guard redisGetReply(context, &raw) == REDIS_OK, let raw else { throw broken(context) }
            let reply = Self.copy(raw.assumingMemoryBound(to: redisReply.self))
            freeReplyObject(raw)
            if case .error(let message) = reply {
                replies.append(.failure(.reply(message)))
            } else {
                replies.append(.success(reply))
            }
        }
        return replies
    }

    /// Waits for the next message pushed on this connection (after SUBSCRIBE): nil when none
    /// came within the connection's timeout.
    public func nextPush() throws(RedisError) -> RedisReply? {
        let context = try connected()
        var raw: UnsafeMutableRawPointer?
        guard redisGetReply(context, &raw) == REDIS_OK, let raw else {
            if context.pointee.err == REDIS_ERR_IO, errno == EAGAIN || errno == EWOULDBLOCK {
                // Nothing came within the timeout. hiredis marks the context failed, but the
                // socket and any part of a reply already read are intact: clear the mark and
                // keep the subscription rather than reconnect and miss what is published
                // meanwhile.
                context.pointee.err = 0
                withUnsafeMutableBytes(of: &context.pointee.errstr) { $0.initializeMemory(as: UInt8.self, repeating: 0) }
                return nil
            }
            throw broken(context)
        }
        defer { freeReplyObject(raw) }
        return Self.copy(raw.assumingMemoryBound(to: redisReply.self))
    }

    public func close() {
        if let context { redisFree(context) }
        context = nil
    }

    private func connected() throws(RedisError) -> UnsafeMutablePointer<redisContext> {
        if let context, context.pointee.err == 0 { return context }
        close()
        let timeout = Self.timeval(seconds: min(timeoutSeconds, 5))
        guard let opened = redisConnectWithTimeout(url.host, Int32(url.port), timeout) else {
            throw .unavailable("cannot allocate a connection")
        }
        guard opened.pointee.err == 0 else {
            let message = Self.message(opened)
            redisFree(opened)
            throw .unavailable("\(url.host):\(url.port): \(message)")
        }
        redisSetTimeout(opened, Self.timeval(seconds: timeoutSeconds))
        redisEnableKeepAlive(opened)
        context = opened
        do {
            if let password = url.password { try command(["AUTH", password]) }
            if url.database != 0 { try command(["SELECT", String(url.database)]) }
        } catch {
            close()
            throw error
        }
        return opened
    }

    private func broken(_ context: UnsafeMutablePointer<redisContext>) -> RedisError {
        let message = Self.message(context)
        close()
        return .unavailable("\(url.host):\(url.port): \(message)")
    }

    private static func message(_ context: UnsafeMutablePointer<redisContext>) -> String {
        let text = withUnsafeBytes(of: context.pointee.errstr) { bytes in
            String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
        return text.isEmpty ? "connection lost" : text
    }

    private static func timeval(seconds: Double) -> Glibc.timeval {
        Glibc.timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - seconds.rounded(.down)) * 1_000_000))
    }

    private static func copy(_ reply: UnsafeMutablePointer<redisReply>) -> RedisReply {
        let value = reply.pointee
        switch value.type {
        case REDIS_REPLY_STRING:
            return .string(text(value))
        case REDIS_REPLY_STATUS:
            return .status(text(value))
        case REDIS_REPLY_ERROR:
            return .error(text(value))
        case REDIS_REPLY_INTEGER:
            return .integer(Int(value.integer))
        case REDIS_REPLY_ARRAY:
            return .array((0..<value.elements).map { copy(value.element[$0]!) })
        default:
            return .null
        }
    }

    private static func text(_ reply: redisReply) -> String {
        guard let bytes = reply.str else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: bytes, count: reply.len), as: UTF8.self)
    }

    private static func withArguments<R>(
        _ arguments: [String], _ body: (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> R
    ) -> R {
        // Copied whole, with their lengths: an argument may hold a NUL byte.
        let copies = arguments.map { argument -> UnsafeMutablePointer<CChar> in
            let bytes = argument.utf8CString
            let copy = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count)
            bytes.withUnsafeBufferPointer { copy.initialize(from: $0.baseAddress!, count: bytes.count) }
            return copy
        }
        defer { for copy in copies { copy.deallocate() } }
        var values: [UnsafePointer<CChar>?] = copies.map { UnsafePointer($0) }
        let lengths = arguments.map { $0.utf8.count }
        return values.withUnsafeMutableBufferPointer { values in
            lengths.withUnsafeBufferPointer { lengths in
                body(Int32(arguments.count), values.baseAddress!, lengths.baseAddress!)
            }
        }
    }
}
