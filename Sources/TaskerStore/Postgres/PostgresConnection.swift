import CLibPQ
import Foundation

/// One libpq connection. Every call blocks: it is used only from the pool's threads, never on
/// an event loop, and by one thread at a time (the pool hands it over, hence the unchecked
/// Sendable).
public final class PostgresConnection: @unchecked Sendable {
    private var connection: OpaquePointer?
    let url: String
    /// Statements prepared on this connection, by their text: each is parsed and planned once.
    private var prepared: [String: String] = [:]

    init(url: String) throws(PostgresError) {
        self.url = url
        try connect()
    }

    deinit {
        PQfinish(connection)
    }

    private func connect() throws(PostgresError) {
        PQfinish(connection)
        prepared.removeAll()
        connection = PQconnectdb(url)
        guard PQstatus(connection) == CONNECTION_OK else {
            let message = Self.errorMessage(connection)
            PQfinish(connection)
            connection = nil
            throw .unavailable(message)
        }
        // Notices (e.g. "relation already exists, skipping") are not errors: keep them quiet.
        PQsetNoticeProcessor(connection, { _, _ in }, nil)
    }

    var isBroken: Bool { connection == nil || PQstatus(connection) != CONNECTION_OK }

    /// Reconnects after the server went away (a restart, say).
    func reconnectIfBroken() throws(PostgresError) {
        if isBroken { try connect() }
    }

    /// Runs one statement with text parameters ($1, $2, …); `nil` is NULL. The statement is
    /// prepared on first use and reused after, so its parse and plan are paid once.
    @discardableResult
    public func query(_ sql: String, _ parameters: [String?] = []) throws(PostgresError) -> PostgresRows {
        guard let connection else { throw .unavailable("not connected") }
        let name: String
        if let known = prepared[sql] {
            name = known
        } else {
            name = "s\(prepared.count)"
            let preparation = PQprepare(connection, name, sql, Int32(parameters.count), nil)
            defer { PQclear(preparation) }
            guard PQresultStatus(preparation) == PGRES_COMMAND_OK else { throw Self.failure(connection, preparation) }
            prepared[sql] = name
        }
        let result = withParameters(parameters) { values in
            PQexecPrepared(connection, name, Int32(parameters.count), values, nil, nil, 0)
        }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_TUPLES_OK, PGRES_COMMAND_OK:
            return Self.rows(of: result)
        default:
            throw Self.failure(connection, result)
        }
    }

    /// Runs a script of several statements (a migration); no parameters.
    public func execute(script sql: String) throws(PostgresError) {
        guard let connection else { throw .unavailable("not connected") }
        let result = PQexec(connection, sql)
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_TUPLES_OK, PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
            return
        default:
            throw Self.failure(connection, result)
        }
    }

    private static func failure(_ connection: OpaquePointer, _ result: OpaquePointer?) -> PostgresError {
        if PQstatus(connection) != CONNECTION_OK {
            return .unavailable(errorMessage(connection))
        }
        let state = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) } ?? "XX000"
        let message = PQresultErrorMessage(result).map { String(cString: $0) } ?? "unknown error"
        return .statement(sqlState: state, message: message.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    private func withParameters<R>(_ parameters: [String?], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> R) -> R {
        var storage: [UnsafeMutablePointer<CChar>?] = parameters.map { $0.map { strdup($0) } ?? nil }
        defer { for pointer in storage { free(pointer) } }
        return storage.withUnsafeMutableBufferPointer { buffer in
            buffer.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: max(buffer.count, 1)) {
                body(parameters.isEmpty ? nil : UnsafePointer($0))
            }
        }
    }

    private static func rows(of result: OpaquePointer?) -> PostgresRows {
        let rowCount = Int(PQntuples(result))
        let columnCount = Int(PQnfields(result))
        let columns = (0..<columnCount).map { String(cString: PQfname(result, Int32($0))) }
        var values: [[String?]] = []
        values.reserveCapacity(rowCount)
        for row in 0..<rowCount {
            values.append((0..<columnCount).map { column in
                PQgetisnull(result, Int32(row), Int32(column)) != 0
                    ? nil : String(cString: PQgetvalue(result, Int32(row), Int32(column)))
            })
        }
        let affected = Int(String(cString: PQcmdTuples(result))) ?? 0
        return PostgresRows(columns: columns, values: values, affectedRows: affected)
    }

    private static func errorMessage(_ connection: OpaquePointer?) -> String {
        guard let connection, let message = PQerrorMessage(connection) else { return "out of memory" }
        return String(cString: message).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

