import Foundation
import NIOConcurrencyHelpers
import TaskerDev
import Testing

@testable import TaskerStore

@Suite(.timeLimit(.minutes(2))) struct PostgresPoolTests {
    @Test func runsParameterisedQueriesWithNulls() async throws {
        let pool = PostgresPool(url: try PrivatePostgres.shared().createDatabase(), size: 2)
        let rows = try await pool.withConnection { connection in
            try connection.query("SELECT $1::int + 1 AS n, $2::text AS nothing, 'a''b' AS quoted", ["41", nil])
        }
        #expect(rows.count == 1)
        #expect(rows.first?.int("n") == 42)
        #expect(rows.first?["nothing"] == nil)
        #expect(rows.first?["quoted"] == "a'b")
        await pool.shutdown()
    }

    @Test func arrayLiteralsComeBackElementByElement() async throws {
        let pool = PostgresPool(url: try PrivatePostgres.shared().createDatabase(), size: 1)
        let texts: [String?] = ["plain", "", "with,comma", #"quote " and \ backslash"#, "{braces}", "NULL", nil, " spaced ", "ünïcödé ✓"]
        let nested = [PostgresArrayLiteral.of(["b", "c,d"]), PostgresArrayLiteral.of([String]())]
        let rows = try await pool.withConnection { connection in
            try connection.query(
                """
                SELECT (SELECT array_agg(t IS NULL) FROM unnest($1::text[]) t) AS nulls,
                    (SELECT array_to_json(array_agg(t)) FROM unnest($1::text[]) t)::text AS texts,
                    (SELECT array_to_json(array_agg(n))::text FROM unnest($2::int[]) n) AS numbers,
                    array_to_json($3::text[]::text[])::text AS nested_first,
                    cardinality(($4::text[])[2]::text[]) AS nested_empty
                """,
                [PostgresArrayLiteral.of(texts), PostgresArrayLiteral.of([3, -1, 0]), nested[0], PostgresArrayLiteral.of(nested)])
        }
        let row = try #require(rows.first)
        #expect(row["nulls"] == "{f,f,f,f,f,f,t,f,f}")
        let decoded = try JSONDecoder().decode([String?].self, from: Data(try #require(row["texts"]).utf8))
        #expect(decoded == texts)
        #expect(row["numbers"] == "[3,-1,0]")
        #expect(row["nested_first"] == #"["b","c,d"]"#)
        #expect(row.int("nested_empty") == 0)
        await pool.shutdown()
    }

    @Test func statementErrorsCarryTheirSQLState() async throws {
        let pool = PostgresPool(url: try PrivatePostgres.shared().createDatabase(), size: 1)
        do {
            try await pool.withConnection { try $0.query("SELEC 1") }
            Issue.record("a syntax error went unnoticed")
        } catch let error as PostgresError {
            #expect(error.sqlState == "42601")
        }
        try await pool.withConnection { connection in
            try connection.query("CREATE TABLE t (k int PRIMARY KEY)")
            try connection.query("INSERT INTO t VALUES (1)")
        }
        do {
            try await pool.withConnection { try $0.query("INSERT INTO t VALUES (1)") }
            Issue.record("a duplicate key went unnoticed")
        } catch let error as PostgresError {
            #expect(error.isUniqueViolation)
        }
        // The connection is still usable after the errors.
        #expect(try await pool.withConnection { try $0.query("SELECT count(*) AS n FROM t") }.first?.int("n") == 1)
        await pool.shutdown()
    }

    @Test func aFailedTransactionLeavesNothingBehind() async throws {
        let pool = PostgresPool(url: try PrivatePostgres.shared().createDatabase(), size: 1)
        try await pool.withConnection { try $0.query("CREATE TABLE t (k int PRIMARY KEY)") }
        await #expect(throws: PostgresError.self) {
            try await pool.transaction { connection in
                try connection.query("INSERT INTO t VALUES (1)")
                try connection.query("INSERT INTO t VALUES (1)")
            }
        }
        #expect(try await pool.withConnection { try $0.query("SELECT count(*) AS n FROM t") }.first?.int("n") == 0)
        await pool.shutdown()
    }

    @Test func aTransactionWaitingInItsMiddleKeepsItsLocksAndCommitsOrRollsBackWhole() async throws {
        let pool = PostgresPool(url: try PrivatePostgres.shared().createDatabase(), size: 2)
        try await pool.withConnection { try $0.query("CREATE TABLE t (k int PRIMARY KEY, v text)"); try $0.query("INSERT INTO t VALUES (1, 'a')") }
        struct Refused: Error {}
        let value: @Sendable () async throws -> String? = { try await pool.withConnection { try $0.query("SELECT v FROM t WHERE k = 1") }.first?["v"] }
        let written = try await pool.transaction(turning: { connection in
            try connection.query("UPDATE t SET v = 'b' WHERE k = 1")
            return .await {
                // The row stays locked while the transaction waits: another writer gives up at once.
                let other: Void? = try? await pool.transaction {
                    try $0.execute(script: "SET LOCAL lock_timeout TO 1; UPDATE t SET v = 'x' WHERE k = 1")
                }
                #expect(other == nil, "the row is locked during the wait")
                let seen = try await value()
                #expect(seen == "a", "not visible before the commit")
                return { connection in
                    try connection.query("UPDATE t SET v = v || 'c' WHERE k = 1")
                    return "done"
                }
            }
        })
        let committed = try await value()
        #expect(written == "done" && committed == "bc", "both halves committed as one")
        await #expect(throws: Refused.self) {
            try await pool.transaction(turning: { connection -> PostgresPool.TransactionTurn<Void> in
                try connection.query("UPDATE t SET v = 'lost' WHERE k = 1")
                return .await { throw Refused() }
            })
        }
        await #expect(throws: PostgresError.self) {
            try await pool.transaction(turning: { connection -> PostgresPool.TransactionTurn<Void> in
                try connection.query("UPDATE t SET v = 'lost' WHERE k = 1")
                return .await { { try $0.query("INSERT INTO t VALUES (1, 'duplicate')") } }
            })
        }
        let kept = try await value()
        #expect(kept == "bc", "a failure in the wait or after it rolls the first half back")
        #expect(try await pool.transaction(turning: { _ in .commit(7) }) == 7, "and the connections serve on")
        await pool.shutdown()
    }

    @Test func moreCallersThanConnectionsAllGetServed() async throws {
        let pool = PostgresPool(url: try PrivatePostgres.shared().createDatabase(), size: 3)
        let concurrent = NIOLockedValueBox((now: 0, most: 0))
        let sum = try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<32 {
                group.addTask {
                    try await pool.withConnection { connection in
                        concurrent.withLockedValue { $0.now += 1; $0.most = max($0.most, $0.now) }
                        defer { concurrent.withLockedValue { $0.now -= 1 } }
                        return try connection.query("SELECT $1::int AS n, pg_sleep(0.01)", [String(index)]).first!.int("n")!
                    }
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(sum == (0..<32).reduce(0, +))
        #expect(concurrent.withLockedValue { $0.most } <= 3)
        await pool.shutdown()
    }

    @Test func unavailableWhileDownThenReconnects() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tasker-pg-restart-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        var server = try PrivatePostgres(in: folder)
        let port = server.port
        let pool = PostgresPool(url: server.url, size: 2)
        #expect(try await pool.withConnection { try $0.query("SELECT 1 AS one") }.first?.int("one") == 1)

        server.stop()
        do {
            try await pool.withConnection { try $0.query("SELECT 1") }
            Issue.record("a query succeeded with the server down")
        } catch let error as PostgresError {
            guard case .unavailable = error else {
                Issue.record("expected unavailable, got \(error)")
                return
            }
        }

        server = try PrivatePostgres(in: folder, port: port)
        #expect(try await pool.withConnection { try $0.query("SELECT 2 AS two") }.first?.int("two") == 2)
        await pool.shutdown()
        server.stop()
    }

    @Test func unreachableServerIsUnavailable() async throws {
        let pool = PostgresPool(url: "postgres://tasker@127.0.0.1:\(LocalPort.free())/tasker?connect_timeout=2", size: 1)
        await #expect(throws: PostgresError.self) { try await pool.withConnection { try $0.query("SELECT 1") } }
        await pool.shutdown()
    }
}

@Suite(.timeLimit(.minutes(2))) struct MigratorTests {
    @Test func appliesTheSchemaOnceAndRecordsIt() async throws {
        let pool = PostgresPool(url: try PrivatePostgres.shared().createDatabase(), size: 1)
        let migrator = Migrator()
        #expect(migrator.migrations.map(\.version) == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14])
        #expect(try await migrator.migrate(pool) == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14])
        #expect(try await migrator.migrate(pool) == [])
        let tables = try await pool.withConnection { connection in
            try connection.query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1")
        }.compactMap { $0["table_name"] }
        #expect(tables == ["annotations", "api_tokens", "schedules", "step_edges", "step_transitions", "steps", "task_templates", "tasker_nodes", "tasker_schema_migrations", "tasks"])
        await pool.shutdown()
    }

    @Test func serversStartingTogetherMigrateOnce() async throws {
        let url = try PrivatePostgres.shared().createDatabase()
        let applied = try await withThrowingTaskGroup(of: [Int].self) { group in
            for _ in 0..<4 {
                group.addTask {
                    let pool = PostgresPool(url: url, size: 1)
                    defer { Task { await pool.shutdown() } }
                    return try await Migrator().migrate(pool)
                }
            }
            return try await group.reduce(into: [Int]()) { $0 += $1 }
        }
        #expect(applied.sorted() == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14])
    }

    @Test func templatesRegisteredBeforeTheRegistrationOrderKeepTheirOrder() async throws {
        let pool = PostgresPool(url: try PrivatePostgres.shared().createDatabase(), size: 1)
        let all = Migrator()
        _ = try await Migrator(migrations: all.migrations.filter { $0.version < 3 }).migrate(pool)
        try await pool.withConnection { connection in
            try connection.execute(script: """
                INSERT INTO task_templates (name, version, definition, fingerprint, created_at) VALUES
                    ('t', 'b', '', '', '2026-01-02'), ('t', 'a', '', '', '2026-01-03'), ('t', 'c', '', '', '2026-01-01');
                """)
        }
        #expect(try await all.migrate(pool) == [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14])
        let order = try await pool.withConnection { connection in
            try connection.execute(script: "INSERT INTO task_templates (name, version, definition, fingerprint) VALUES ('t', 'd', '', '')")
            return try connection.query("SELECT version, registration FROM task_templates ORDER BY registration")
                .map { "\($0["version"]!)\($0.int("registration")!)" }
        }
        #expect(order == ["c1", "b2", "a3", "d4"])
        // 0008 gives the rows that were there their place in the order of versions.
        let byVersion = try await pool.withConnection { connection in
            try connection.query("SELECT version FROM task_templates ORDER BY version_order").map { $0["version"]! }
        }
        #expect(byVersion == ["a", "b", "c", "d"])
        await pool.shutdown()
    }

    @Test func aFailingMigrationIsRolledBackAndNotRecorded() async throws {
        let pool = PostgresPool(url: try PrivatePostgres.shared().createDatabase(), size: 1)
        let broken = Migrator(migrations: [
            .init(version: 1, name: "good", sql: "CREATE TABLE a (k int);"),
            .init(version: 2, name: "bad", sql: "CREATE TABLE b (k int); CREATE TABLE b (k int);"),
        ])
        await #expect(throws: PostgresError.self) { try await broken.migrate(pool) }
        let state = try await pool.withConnection { connection in
            (try connection.query("SELECT version FROM tasker_schema_migrations").compactMap { $0.int("version") },
             try connection.query("SELECT to_regclass('b') IS NULL AS missing").first!.bool("missing")!)
        }
        #expect(state.0 == [1])
        #expect(state.1, "table b of the failed migration must not exist")
        await pool.shutdown()
    }
}
