import NIOConcurrencyHelpers
import NIOPosix
import TaskerMetrics

/// A fixed set of libpq connections whose blocking calls run on threads of their own, never on
/// an event loop. A connection broken by a server restart is reconnected on its next use; while
/// the server is down, calls fail with `PostgresError.unavailable`.
public final class PostgresPool: Sendable {
    private struct State {
        var idle: [PostgresConnection] = []
        var waiters: [CheckedContinuation<PostgresConnection?, Never>] = []
        var opened = 0
        var closed = false
    }

    public let url: String
    public let size: Int
    private let threads: NIOThreadPool
    private let state = NIOLockedValueBox(State())
    // Looked up once: every call records its wait.
    private let waits = TaskerMetric.postgresPoolWait()
    private let errors = TaskerMetric.postgresErrors()

    public init(url: String, size: Int = 8) {
        self.url = url
        self.size = max(size, 1)
        threads = NIOThreadPool(numberOfThreads: self.size)
        threads.start()
    }

    /// Runs `body` with a connection, on one of the pool's threads.
    public func withConnection<Result: Sendable>(
        _ body: @escaping @Sendable (PostgresConnection) throws -> Result
    ) async throws -> Result {
        try await holding { connection in
            try await self.threads.runIfActive {
                try connection.reconnectIfBroken()
                return try body(connection)
            }
        }
    }

    /// Runs `body` with a connection taken from the pool for as long as it runs, and given back after.
    private func holding<Result: Sendable>(_ body: (PostgresConnection) async throws -> Result) async throws -> Result {
        let asked = ContinuousClock.now
        let connection: PostgresConnection
        do {
            connection = try await acquire()
        } catch {
            errors.increment()
            throw error
        }
        waits.record(ContinuousClock.now - asked)
        do {
            let result = try await body(connection)
            release(connection)
            return result
        } catch {
            release(connection)
            if error is PostgresError { errors.increment() }
            throw error
        }
    }

    /// Runs `body` inside BEGIN … COMMIT; any error rolls back. A transaction that need not
    /// wait for its commit to reach the disk (`flushCommit: false`: one whose loss in a crash
    /// costs nothing but doing it again) is durable a moment later, and before any transaction
    /// committed after it, since the log is written in order.
    ///
    /// `genericPlans`: the transaction's prepared statements use their generic plan rather
    /// than being planned again for each execution's values, for statements whose every
    /// condition is on an index whatever the values (planning was a fifth of the database's
    /// time on the step paths). Such a plan is made once and kept until the table's
    /// statistics change; made while a new table is still small, it would scan the whole
    /// table for as long as autovacuum has not analyzed it (a minute or more, in which a
    /// busy node writes tens of thousands of rows), so these plans are made with sequential
    /// scans priced out.
    public func transaction<Result: Sendable>(
        flushCommit: Bool = true,
        genericPlans: Bool = false,
        _ body: @escaping @Sendable (PostgresConnection) throws -> Result
    ) async throws -> Result {
        try await transaction(flushCommit: flushCommit, genericPlans: genericPlans, turning: { connection in .commit(try body(connection)) })
    }

    /// What a transaction's body asks for: its commit with a result, or to wait for something
    /// other than the database before it goes on.
    public enum TransactionTurn<Result: Sendable>: Sendable {
        case commit(Result)
        /// The transaction stays open, its locks held, while `work` runs off the connection's
        /// thread; the body `work` returns then runs in the same transaction, and it commits.
        case await(_ work: @Sendable () async throws -> @Sendable (PostgresConnection) throws -> Result)
    }

    /// As `transaction`, for a body that may have to wait in its middle for something other
    /// than the database (Redis): it answers `.await` with that work, and the transaction goes
    /// on with what the work returns. A body that answers `.commit` costs what `transaction` does.
    public func transaction<Result: Sendable>(
        flushCommit: Bool = true,
        genericPlans: Bool = false,
        turning body: @escaping @Sendable (PostgresConnection) throws -> TransactionTurn<Result>
    ) async throws -> Result {
        try await holding { connection in
            let turn = try await threads.runIfActive {
                try connection.reconnectIfBroken()
                try Self.begin(connection, flushCommit: flushCommit, genericPlans: genericPlans)
                return try Self.rollingBack(connection) {
                    let turn = try body(connection)
                    if case .commit = turn { try connection.query("COMMIT") }
                    return turn
                }
            }
            switch turn {
            case .commit(let result):
                return result
            case .await(let work):
                let then: @Sendable (PostgresConnection) throws -> Result
                do {
                    then = try await work()
                } catch {
                    _ = try? await threads.runIfActive { try Self.rollingBack(connection) { throw error } }
                    throw error
                }
                return try await threads.runIfActive {
                    try Self.rollingBack(connection) {
                        let result = try then(connection)
                        try connection.query("COMMIT")
                        return result
                    }
                }
            }
        }
    }

    private static func begin(_ connection: PostgresConnection, flushCommit: Bool, genericPlans: Bool) throws {
        if flushCommit && !genericPlans {
            try connection.query("BEGIN")
        } else {
            try connection.execute(script: "BEGIN"
                + (flushCommit ? "" : "; SET LOCAL synchronous_commit TO OFF")
                + (genericPlans ? "; SET LOCAL plan_cache_mode TO force_generic_plan; SET LOCAL enable_seqscan TO off" : ""))
        }
    }

    /// `body`'s result; an error it throws rolls the open transaction back first.
    private static func rollingBack<Result>(_ connection: PostgresConnection, _ body: () throws -> Result) throws -> Result {
        do {
            return try body()
        } catch {
            if !connection.isBroken { _ = try? connection.query("ROLLBACK") }
            throw error
        }
    }

    /// Closes every connection and stops the threads; later calls fail as unavailable.
    public func shutdown() async {
        let waiters = state.withLockedValue { state -> [CheckedContinuation<PostgresConnection?, Never>] in
            state.closed = true
            state.idle.removeAll()
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: nil) }
        try? await threads.shutdownGracefully()
    }

    private enum Acquisition {
        case ready(PostgresConnection)
        case open
        case wait
        case closed
    }

    private func acquire() async throws -> PostgresConnection {
        let acquisition: Acquisition = state.withLockedValue { state in
            if state.closed { return .closed }
            if let connection = state.idle.popLast() { return .ready(connection) }
            if state.opened < size {
                state.opened += 1
                return .open
            }
            return .wait
        }
        switch acquisition {
        case .ready(let connection):
            return connection
        case .closed:
            throw PostgresError.unavailable("the connection pool is shut down")
        case .open:
            do {
                let url = self.url
                return try await threads.runIfActive { try PostgresConnection(url: url) }
            } catch {
                state.withLockedValue { $0.opened -= 1 }
                wakeOneWaiterToOpen()
                throw error
            }
        case .wait:
            let connection = await withCheckedContinuation { continuation in
                let immediate: PostgresConnection?? = state.withLockedValue { state in
                    if state.closed { return .some(nil) }
                    if let idle = state.idle.popLast() { return .some(idle) }
                    state.waiters.append(continuation)
                    return .none
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
            guard let connection else {
                // Woken without a connection: a slot to open one freed up, or the pool closed.
                return try await acquire()
            }
            return connection
        }
    }

    private func release(_ connection: PostgresConnection) {
        let waiter = state.withLockedValue { state -> CheckedContinuation<PostgresConnection?, Never>? in
            if state.closed { return nil }
            if !state.waiters.isEmpty { return state.waiters.removeFirst() }
            state.idle.append(connection)
            return nil
        }
        waiter?.resume(returning: connection)
    }

    /// After a failed open, a waiter may open one in its place.
    private func wakeOneWaiterToOpen() {
        let waiter = state.withLockedValue { state -> CheckedContinuation<PostgresConnection?, Never>? in
            state.waiters.isEmpty ? nil : state.waiters.removeFirst()
        }
        waiter?.resume(returning: nil)
    }
}
