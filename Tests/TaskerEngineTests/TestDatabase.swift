import Foundation
import TaskerDev
import TaskerStore

/// One private Postgres for the whole test process; each test gets a database of its own in it,
/// so tests run side by side.
enum TestDatabase {
    nonisolated(unsafe) private static var started: PrivatePostgres?
    private static let server: PrivatePostgres = {
        let server = try! PrivatePostgres()
        started = server
        atexit { TestDatabase.started?.stop() }
        return server
    }()

    /// A fresh, empty database; its URL.
    static func fresh() async throws -> String {
        let admin = PostgresPool(url: server.url, size: 1)
        let name = "test_\(UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased())"
        try await admin.withConnection { try $0.query("CREATE DATABASE \(name)") }
        await admin.shutdown()
        return "postgres://tasker@127.0.0.1:\(server.port)/\(name)"
    }
}
