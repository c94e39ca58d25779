import Foundation

/// Applies the schema's SQL files (Schema/NNNN_name.sql, in order) that a database has not
/// seen yet. Several servers may start at once: an advisory lock lets one of them migrate while
/// the others wait, and each file runs in its own transaction with its version recorded.
public struct Migrator: Sendable {
    public struct Migration: Sendable, Equatable {
        public let version: Int
        public let name: String
        public let sql: String
    }

    /// An arbitrary constant every Tasker server uses for the lock.
    static let lockKey = 7_420_000_001

    public let migrations: [Migration]

    public init(migrations: [Migration] = Migrator.bundled()) {
        self.migrations = migrations.sorted { $0.version < $1.version }
    }

    /// The SQL files shipped with the package.
    public static func bundled() -> [Migration] {
        guard let folder = Bundle.module.url(forResource: "Schema", withExtension: nil),
              let files = try? FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)
        else { return [] }
        return files.filter { $0.pathExtension == "sql" }.compactMap { (url: URL) -> Migration? in
            let file: String = url.deletingPathExtension().lastPathComponent
            guard let underscore = file.firstIndex(of: "_"), let version = Int(file[..<underscore]),
                  let sql = try? String(contentsOf: url, encoding: .utf8)
            else { return nil }
            return Migration(version: version, name: String(file[file.index(after: underscore)...]), sql: sql)
        }
    }

    /// Brings the schema up to date; returns the versions this call applied.
    @discardableResult
    public func migrate(_ pool: PostgresPool) async throws -> [Int] {
        let migrations = self.migrations
        return try await pool.withConnection { connection in
            try connection.query("SELECT pg_advisory_lock($1)", [String(Self.lockKey)])
            defer { _ = try? connection.query("SELECT pg_advisory_unlock($1)", [String(Self.lockKey)]) }
            try connection.query("""
                CREATE TABLE IF NOT EXISTS tasker_schema_migrations (
                    version integer PRIMARY KEY,
                    name text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now())
                """)
            let applied = Set(try connection.query("SELECT version FROM tasker_schema_migrations").compactMap { $0.int("version") })
            var done: [Int] = []
            for migration in migrations where !applied.contains(migration.version) {
                try connection.query("BEGIN")
                do {
                    try connection.execute(script: migration.sql)
                    try connection.query(
                        "INSERT INTO tasker_schema_migrations (version, name) VALUES ($1, $2)",
                        [String(migration.version), migration.name])
                    try connection.query("COMMIT")
                } catch {
                    _ = try? connection.query("ROLLBACK")
                    throw error
                }
                done.append(migration.version)
            }
            return done
        }
    }
}
