/// Columns padded to their widest cell, for the CLI's listings.
enum Table {
    static func render(header: [String], rows: [[String]]) -> String {
        render([header] + rows, widths: widths(of: [header] + rows))
    }

    /// Each column's widest cell.
    static func widths(of rows: [[String]]) -> [Int] {
        guard let first = rows.first else { return [] }
        return first.indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
    }

    /// `rows` padded to `widths` (the last column never padded).
    static func render(_ rows: [[String]], widths: [Int]) -> String {
        rows.map { row in
            row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
