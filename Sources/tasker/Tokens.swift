import ArgumentParser
import Foundation
import SwiftProtobuf
import TaskerAuth
import TaskerClient
import TaskerProto
import TaskerServer
import TaskerStore

/// `tasker tokens`: the API tokens of a server that runs with --auth, made, listed and revoked
/// through its Admin service with an admin token, or straight in its database (the first
/// admin token, before there is any).
struct Tokens: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make, list and revoke API tokens: through the server with an admin --token, or in its database with --database-url.",
        subcommands: [Create.self, ListTokens.self, Revoke.self])

    /// Where the tokens are kept: the database when its URL is given, else the server.
    struct Keeper: ParsableArguments {
        @Option(name: .customLong("database-url"), help: "Work straight in the server's Postgres (env TASKER_DATABASE_URL), e.g. for the first admin token.")
        var databaseURL: String? = ProcessInfoLite.environment("TASKER_DATABASE_URL")

        @OptionGroup var connection: ConnectionOptions

        /// Runs `body` against the database or the server, turning what goes wrong into a
        /// message with the exit code that says what happened.
        func run<Result>(_ body: (TokenKeeper) async throws -> Result) async throws -> Result {
            if let databaseURL {
                do {
                    return try await ServerDatabase.withPool(databaseURL) { try await body(.database(TokenStore(pool: $0))) }
                } catch {
                    throw Self.failure(error)
                }
            }
            guard connection.token != nil else {
                throw ValidationError("give an admin --token (or TASKER_TOKEN) to work through the server, or --database-url to work in its database")
            }
            return try await connection.withClient { try await body(.server($0)) }
        }

        private static func failure(_ error: any Error) -> CommandFailure {
            switch error {
            case TokenStoreError.noSuchToken: CommandFailure("\(error)", code: CommandFailure.notFound)
            case is TokenStoreError: CommandFailure("\(error)", code: CommandFailure.refused)
            default: CommandFailure("cannot work in the database: \(error)", code: CommandFailure.unreachable)
            }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make a token; it is printed once, and only its SHA-256 is kept.")

        @Option(help: "A name for the token, unique among those in force.")
        var name: String

        @Option(help: "viewer, submitter, worker or admin.")
        var role: RoleArgument

        @Option(help: "How long it lasts, e.g. 90d, 12h, 30m; without it, until revoked.")
        var expires: Lifetime?

        @OptionGroup var keeper: Keeper

        func run() async throws {
            try await reporting {
                let (token, record) = try await keeper.run { try await $0.create(name: name, role: role.role, expiresIn: expires?.seconds) }
                print(token)
                FileHandle.standardError.write(Data("made token \"\(record.name)\" (\(TokenLine.role(record.role))); it is shown only now\n".utf8))
            }
        }
    }

    struct ListTokens: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "The tokens, revoked and expired ones too, newest first.")

        @OptionGroup var keeper: Keeper

        @Flag(help: "Print JSON (the wire contract's field names) instead of text, for scripts.")
        var json = false

        func run() async throws {
            try await reporting {
                let tokens = try await keeper.run { try await $0.list() }
                if json {
                    print(CommandOutput.json(Tasker_V1_ListTokensResponse.with { $0.tokens = tokens }))
                    return
                }
                let now = Date()
                for token in tokens { print(TokenLine.describe(token, now: now)) }
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke the token in force under a name; every node refuses it within 5 s.")

        @Argument(help: "The token's name.")
        var name: String

        @OptionGroup var keeper: Keeper

        func run() async throws {
            try await reporting {
                let record = try await keeper.run { try await $0.revoke(name: name) }
                print("revoked \"\(record.name)\" (\(TokenLine.role(record.role)))")
            }
        }
    }
}

/// The two places `tasker tokens` can work: one set of answers from either.
enum TokenKeeper {
    case database(TokenStore)
    case server(TaskerClient)

    static let createdByDatabase = "database"

    func create(name: String, role: Role, expiresIn: Double?) async throws -> (String, Tasker_V1_ApiToken) {
        switch self {
        case .database(let store):
            let (token, record) = try await store.create(name: name, role: role, createdBy: Self.createdByDatabase, expiresIn: expiresIn)
            return (token.text, Tasker_V1_ApiToken(record))
        case .server(let client):
            let response = try await client.createToken(name: name, role: role.proto, expiresIn: expiresIn)
            return (response.token, response.record)
        }
    }

    func list() async throws -> [Tasker_V1_ApiToken] {
        switch self {
        case .database(let store): try await store.list().map(Tasker_V1_ApiToken.init)
        case .server(let client): try await client.tokens()
        }
    }

    func revoke(name: String) async throws -> Tasker_V1_ApiToken {
        switch self {
        case .database(let store): Tasker_V1_ApiToken(try await store.revoke(name: name))
        case .server(let client): try await client.revokeToken(name: name)
        }
    }
}

/// A token as one line of `tasker tokens list`.
enum TokenLine {
    static func describe(_ token: Tasker_V1_ApiToken, now: Date) -> String {
        let state = token.hasRevokedAt ? "revoked" : token.hasExpiresAt && token.expiresAt.date <= now ? "expired" : "in force"
        let expires = token.hasExpiresAt ? "expires \(time(token.expiresAt))" : "no expiry"
        let used = token.hasLastUsedAt ? "last used \(time(token.lastUsedAt))" : "never used"
        return "\(token.name)  \(role(token.role))  \(state)  made \(time(token.createdAt)) by \(token.createdBy)  \(expires)  \(used)"
    }

    static func role(_ role: Tasker_V1_Role) -> String {
        Role(role)?.rawValue ?? "unknown role"
    }

    private static func time(_ timestamp: Google_Protobuf_Timestamp) -> String {
        ISO8601DateFormatter().string(from: timestamp.date)
    }
}

struct RoleArgument: ExpressibleByArgument {
    let role: Role

    init?(argument: String) {
        guard let role = Role(rawValue: argument) else { return nil }
        self.role = role
    }

    static var allValueStrings: [String] { Role.allCases.map(\.rawValue) }
}
