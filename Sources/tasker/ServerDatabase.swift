import TaskerStore

/// What the commands that work straight in a server's Postgres (`--database-url`: tokens,
/// prune) share: one connection, the schema brought up to date first, closed whatever happens.
enum ServerDatabase {
    static func withPool<Result>(_ url: String, _ body: (PostgresPool) async throws -> Result) async throws -> Result {
        let pool = PostgresPool(url: url, size: 1)
        do {
            try await Migrator().migrate(pool)
            let result = try await body(pool)
            await pool.shutdown()
            return result
        } catch {
            await pool.shutdown()
            throw error
        }
    }
}
