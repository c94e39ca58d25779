/// The rows of a statement's result, copied out of libpq as text (`nil` is SQL NULL).
public struct PostgresRows: Sendable, Sequence {
    public let columns: [String]
    public let values: [[String?]]
    /// Rows changed by an INSERT, UPDATE or DELETE.
    public let affectedRows: Int

    public var count: Int { values.count }
    public var isEmpty: Bool { values.isEmpty }

    public func makeIterator() -> AnyIterator<PostgresRow> {
        var index = 0
        return AnyIterator {
            guard index < values.count else { return nil }
            defer { index += 1 }
            return PostgresRow(rows: self, index: index)
        }
    }

    public var first: PostgresRow? {
        values.isEmpty ? nil : PostgresRow(rows: self, index: 0)
    }

    public subscript(index: Int) -> PostgresRow {
        PostgresRow(rows: self, index: index)
    }
}

/// One row; columns by name or position.
public struct PostgresRow: Sendable {
    let rows: PostgresRows
    let index: Int

    public subscript(column: String) -> String? {
        guard let position = rows.columns.firstIndex(of: column) else {
            preconditionFailure("no column \(column) in \(rows.columns)")
        }
        return rows.values[index][position]
    }

    public subscript(position: Int) -> String? {
        rows.values[index][position]
    }

    /// The bytes of the row's text: a message made of it is about as large.
    public var textBytes: Int {
        rows.values[index].reduce(0) { $0 + ($1?.utf8.count ?? 0) }
    }

    public func int(_ column: String) -> Int? { self[column].flatMap { Int($0) } }
    public func bool(_ column: String) -> Bool? { self[column].map { $0 == "t" } }
    public func double(_ column: String) -> Double? { self[column].flatMap { Double($0) } }
}
