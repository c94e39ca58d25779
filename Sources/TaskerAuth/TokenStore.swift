import Foundation
import TaskerEngine
import TaskerStore

/// A token as Postgres keeps it: everything but the token itself. Times are seconds since 1970.
public struct TokenRecord: Sendable, Equatable {
    public let id: String
    public let name: String
    public let role: Role
    public let createdBy: String
    public let createdAt: Double
    public let expiresAt: Double?
    public let lastUsedAt: Double?
    public let revokedAt: Double?

    /// Why a call with this token is refused at `now`, or nil when it may go on.
    public func refusal(at now: Double) -> String? {
        if revokedAt != nil { return "the token \"\(name)\" was revoked" }
        if let expiresAt, expiresAt <= now { return "the token \"\(name)\" expired" }
        return nil
    }
}

/// Why a token could not be made or revoked, in words for the person who asked.
public enum TokenStoreError: Error, Equatable, CustomStringConvertible {
    case nameTaken(String)
    case noSuchToken(String)
    case badName(String)

    public var description: String {
        switch self {
        case .nameTaken(let name): "a token named \(InputCheck.quoted(name)) exists already: revoke it first, or choose another name"
        case .noSuchToken(let name): "no token named \(InputCheck.quoted(name)) is in force"
        case .badName(let reason): reason
        }
    }
}

/// The API tokens in Postgres (table `api_tokens`), by the SHA-256 of each.
public struct TokenStore: Sendable {
    let pool: PostgresPool
    /// A token's last use is written at most this often.
    static let touchInterval = 60

    public init(pool: PostgresPool) {
        self.pool = pool
    }

    private static let columns = """
        token_id::text AS id, name, role, created_by, extract(epoch FROM created_at)::float8 AS created_at,
        extract(epoch FROM expires_at)::float8 AS expires_at, extract(epoch FROM last_used_at)::float8 AS last_used_at,
        extract(epoch FROM revoked_at)::float8 AS revoked_at
        """

    /// Makes a token; the returned one is the only time its text is known.
    public func create(name: String, role: Role, createdBy: String, expiresIn: Double? = nil) async throws -> (APIToken, TokenRecord) {
        guard !name.isEmpty, name.utf8.count <= 128, !name.utf8.contains(0) else {
            throw TokenStoreError.badName("a token's name is 1 to 128 bytes, without NUL")
        }
        let token = APIToken.generate()
        let expires = expiresIn.map { String($0) }
        do {
            let rows = try await pool.withConnection { connection in
                try connection.query(
                    """
                    INSERT INTO api_tokens (token_id, name, role, token_sha256, created_by, expires_at)
                    VALUES (gen_random_uuid(), $1, $2, decode($3, 'hex'), $4, now() + make_interval(secs => $5::float8))
                    RETURNING \(Self.columns)
                    """, [name, role.rawValue, token.sha256Hex, createdBy, expires])
            }
            return (token, try Self.record(rows.first!))
        } catch let error as PostgresError where error.isUniqueViolation {
            throw TokenStoreError.nameTaken(name)
        }
    }

    /// Every token, revoked ones too, newest first.
    public func list() async throws -> [TokenRecord] {
        let rows = try await pool.withConnection { connection in
            try connection.query("SELECT \(Self.columns) FROM api_tokens ORDER BY created_at DESC, name")
        }
        return try rows.map(Self.record)
    }

    /// Revokes the token in force under `name`.
    public func revoke(name: String) async throws -> TokenRecord {
        let rows = try await pool.withConnection { connection in
            try connection.query(
                "UPDATE api_tokens SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL RETURNING \(Self.columns)", [name])
        }
        guard let row = rows.first else { throw TokenStoreError.noSuchToken(name) }
        return try Self.record(row)
    }

    /// The token with this SHA-256, revoked or not; nil when there is none.
    public func find(_ token: APIToken) async throws -> TokenRecord? {
        let rows = try await pool.withConnection { connection in
            try connection.query("SELECT \(Self.columns) FROM api_tokens WHERE token_sha256 = decode($1, 'hex')", [token.sha256Hex])
        }
        return try rows.first.map(Self.record)
    }

    /// Notes that a token was used, unless that was noted less than a minute ago.
    public func touch(id: String) async throws {
        _ = try await pool.withConnection { connection in
            try connection.query(
                """
                UPDATE api_tokens SET last_used_at = now()
                WHERE token_id = $1::uuid AND (last_used_at IS NULL OR last_used_at < now() - make_interval(secs => $2))
                """, [id, String(Self.touchInterval)])
        }
    }

    private struct Unreadable: Error, CustomStringConvertible {
        let description: String
    }

    private static func record(_ row: PostgresRow) throws -> TokenRecord {
        guard let id = row["id"], let name = row["name"], let role = row["role"].flatMap(Role.init(rawValue:)),
              let createdAt = row.double("created_at")
        else { throw Unreadable(description: "an api_tokens row cannot be read") }
        return TokenRecord(
            id: id, name: name, role: role, createdBy: row["created_by"] ?? "", createdAt: createdAt,
            expiresAt: row.double("expires_at"), lastUsedAt: row.double("last_used_at"), revokedAt: row.double("revoked_at"))
    }
}
