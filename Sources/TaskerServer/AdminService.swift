import Foundation
import SwiftProtobuf
import TaskerAuth
import TaskerEngine
import TaskerProto
import TaskerRPC

/// `tasker.v1.Admin`: the API tokens, made, listed and revoked by a caller whose token has the
/// role admin (the gate checked that). A node without `--auth` refuses every call: tokens made
/// where no one is asked for one would be a way in the day auth is turned on.
public struct AdminService: RPCService {
    let store: TokenStore
    /// nil when the node runs without `--auth`.
    let gate: TokenGate?

    public init(store: TokenStore, gate: TokenGate?) {
        self.store = store
        self.gate = gate
    }

    public func register(into router: inout RPCRouter) {
        let prefix = "/tasker.v1.Admin/"
        router.registerUnary(prefix + "CreateToken") { (request: Tasker_V1_CreateTokenRequest, context) -> Tasker_V1_CreateTokenResponse in
            let caller = try admitted(context)
            guard let role = Role(request.role) else {
                throw RPCError(.invalidArgument, "role must be one of \(Role.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            var lifetime: Double?
            if request.hasExpiresIn {
                let seconds = Double(request.expiresIn.seconds) + Double(request.expiresIn.nanos) / 1e9
                guard seconds > 0, seconds <= Self.longestLifetime else {
                    throw RPCError(.invalidArgument, "expires_in is a duration above 0 and at most 100 years; leave it unset for a token that does not expire")
                }
                lifetime = seconds
            }
            return try await Self.mapped {
                let (token, record) = try await store.create(name: request.name, role: role, createdBy: caller.name, expiresIn: lifetime)
                return .with {
                    $0.token = token.text
                    $0.record = Tasker_V1_ApiToken(record)
                }
            }
        }
        router.registerUnary(prefix + "ListTokens") { (_: Tasker_V1_ListTokensRequest, context) -> Tasker_V1_ListTokensResponse in
            _ = try admitted(context)
            return try await Self.mapped {
                let records = try await store.list()
                return .with { $0.tokens = records.map(Tasker_V1_ApiToken.init) }
            }
        }
        router.registerUnary(prefix + "RevokeToken") { (request: Tasker_V1_RevokeTokenRequest, context) -> Tasker_V1_ApiToken in
            _ = try admitted(context)
            return try await Self.mapped {
                let record = try await store.revoke(name: request.name)
                gate?.forget(tokenID: record.id)
                return Tasker_V1_ApiToken(record)
            }
        }
    }

    static let longestLifetime = 100 * 366 * 86_400.0

    /// The admin calling; FAILED_PRECONDITION on a node without auth.
    private func admitted(_ context: ServerContext) throws -> TokenRecord {
        guard gate != nil, let caller = context.caller as? TokenRecord else {
            throw RPCError(
                .failedPrecondition,
                "this server runs without --auth, so it makes no tokens: make them with tasker tokens --database-url, then serve with --auth")
        }
        return caller
    }

    /// Runs a store call, turning its refusals into statuses.
    static func mapped<Response>(_ body: () async throws -> Response) async throws -> Response {
        do {
            return try await body()
        } catch let error as TokenStoreError {
            switch error {
            case .nameTaken: throw RPCError(.alreadyExists, error.description)
            case .noSuchToken: throw RPCError(.notFound, error.description)
            case .badName: throw RPCError(.invalidArgument, error.description)
            }
        } catch {
            throw RPCError(EngineError(error))
        }
    }
}

extension Role {
    /// The role of the wire contract; nil for ROLE_UNSPECIFIED or a value this build does not know.
    public init?(_ role: Tasker_V1_Role) {
        switch role {
        case .viewer: self = .viewer
        case .submitter: self = .submitter
        case .worker: self = .worker
        case .admin: self = .admin
        default: return nil
        }
    }

    public var proto: Tasker_V1_Role {
        switch self {
        case .viewer: .viewer
        case .submitter: .submitter
        case .worker: .worker
        case .admin: .admin
        }
    }
}

extension Tasker_V1_ApiToken {
    public init(_ record: TokenRecord) {
        self.init()
        name = record.name
        role = record.role.proto
        createdBy = record.createdBy
        createdAt = Self.timestamp(record.createdAt)
        if let expiresAt = record.expiresAt { self.expiresAt = Self.timestamp(expiresAt) }
        if let lastUsedAt = record.lastUsedAt { self.lastUsedAt = Self.timestamp(lastUsedAt) }
        if let revokedAt = record.revokedAt { self.revokedAt = Self.timestamp(revokedAt) }
    }

    private static func timestamp(_ seconds: Double) -> Google_Protobuf_Timestamp {
        Google_Protobuf_Timestamp(roundingTimeIntervalSince1970: seconds, rule: .toNearestOrAwayFromZero)
    }
}
