import TaskerStore

/// A page of a listing, read a chunk of rows at a time so that Postgres is never asked for
/// more than the page can hold: it ends at `limit` rows, or early, once it holds about
/// InputLimits.pageBytes (a page of 500 tasks with 256 KiB contexts would otherwise read
/// 128 MiB to return 12).
enum ListingPage {
    static let chunk = 50

    /// `next(after, count)` reads up to `count` rows that follow `after` (nil: the first), in
    /// the listing's order. `more` says whether rows follow the page.
    static func read(
        limit: Int, _ next: (_ after: PostgresRow?, _ count: Int) throws -> PostgresRows
    ) throws -> (rows: [PostgresRow], more: Bool) {
        var kept: [PostgresRow] = []
        var bytes = 0
        while true {
            let wanted = min(limit - kept.count, chunk)
            // One row past what is wanted tells whether there is more.
            let rows = try next(kept.last, wanted + 1)
            for row in rows.prefix(wanted) {
                bytes += row.textBytes
                if bytes > InputLimits.pageBytes, !kept.isEmpty { return (kept, true) }
                kept.append(row)
            }
            if rows.count <= wanted { return (kept, false) }
            if kept.count == limit { return (kept, true) }
        }
    }
}
