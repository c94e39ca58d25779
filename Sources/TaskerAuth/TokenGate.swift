import Foundation
import NIOConcurrencyHelpers
import TaskerRPC

/// The gate of `tasker serve --auth`: every call but health's carries `authorization: Bearer
/// <token>`, whose role must permit the method. A node believes what it checked for
/// `recheckAfter` seconds before asking Postgres again, so a revocation is in force on every
/// node within that and one query.
public final class TokenGate: CallGate {
    let store: TokenStore
    let recheckAfter: Double
    private struct Checked {
        /// nil: no such token.
        let record: TokenRecord?
        let at: Double
    }

    private let checked = NIOLockedValueBox<[[UInt8]: Checked]>([:])
    /// Checked tokens kept at most; past it the oldest half goes.
    private static let cacheLimit = 10_000

    public init(store: TokenStore, recheckAfter: Double = 2) {
        self.store = store
        self.recheckAfter = recheckAfter
    }

    public func admit(_ context: ServerContext) async throws -> (any Sendable)? {
        guard let required = Role.required(for: context.path) else { return nil }
        let record = try await authenticate(context.metadata)
        guard record.role.permits(required) else {
            throw RPCError(.permissionDenied, "\(context.path) needs the role \(required.rawValue); the token \"\(record.name)\" has the role \(record.role.rawValue)")
        }
        return record
    }

    /// The token a call carries, in force; UNAUTHENTICATED saying what is wrong otherwise.
    public func authenticate(_ metadata: Metadata) async throws -> TokenRecord {
        guard let header = metadata.firstString("authorization") else {
            throw RPCError(.unauthenticated, "no token: send the metadata authorization: Bearer <token> (the CLI's --token, or TASKER_TOKEN)")
        }
        guard header.hasPrefix("Bearer "), let token = APIToken(String(header.dropFirst("Bearer ".count))) else {
            throw RPCError(.unauthenticated, "the authorization metadata is not \"Bearer \" and a token (tkr_ and 32 letters or digits)")
        }
        let now = Date().timeIntervalSince1970
        guard let record = try await lookup(token, now: now) else {
            throw RPCError(.unauthenticated, "the token is not known here: it was never made, or was made for another Tasker")
        }
        if let refusal = record.refusal(at: now) { throw RPCError(.unauthenticated, refusal) }
        return record
    }

    /// Forgets what was checked of a token, so that this node asks Postgres at its next use
    /// (a revocation made here is in force here at once).
    public func forget(tokenID: String) {
        checked.withLockedValue { cache in
            for (key, entry) in cache where entry.record?.id == tokenID { cache[key] = nil }
        }
    }

    private func lookup(_ token: APIToken, now: Double) async throws -> TokenRecord? {
        let key = token.sha256
        if let cached = checked.withLockedValue({ $0[key] }), now - cached.at < recheckAfter {
            return cached.record
        }
        let record: TokenRecord?
        do {
            record = try await store.find(token)
        } catch {
            throw RPCError(.unavailable, "the token cannot be checked now: the database is unavailable")
        }
        checked.withLockedValue { cache in
            if cache.count >= Self.cacheLimit {
                let oldest = cache.sorted { $0.value.at < $1.value.at }.prefix(Self.cacheLimit / 2).map(\.key)
                for key in oldest { cache[key] = nil }
            }
            cache[key] = Checked(record: record, at: now)
        }
        if let record, record.refusal(at: now) == nil, (record.lastUsedAt ?? 0) < now - Double(TokenStore.touchInterval) {
            try? await store.touch(id: record.id)
        }
        return record
    }
}
