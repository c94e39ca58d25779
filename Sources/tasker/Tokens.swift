import ArgumentParser
import Foundation
import TaskerServer
import TaskerStore

/// `tasker tokens`: the API tokens of a server that runs with --auth, made, listed and revoked
/// straight in its database.
struct Tokens: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make, list and revoke API tokens, in the server's database.",
        subcommands: [Create.self, ListTokens.self, Revoke.self])

    struct Database: ParsableArguments {
        @Option(name: .customLong("database-url"), help: "The server's Postgres (env TASKER_DATABASE_URL).")
        var url: String? = ProcessInfoLite.environment("TASKER_DATABASE_URL")

        func withStore<Result>(_ body: (TokenStore) async throws -> Result) async throws -> Result {
            guard let url else { throw ValidationError("give --database-url (or TASKER_DATABASE_URL): tokens are made in the server's database") }
            let pool = PostgresPool(url: url, size: 1)
            do {
                try await Migrator().migrate(pool)
                let result = try await body(TokenStore(pool: pool))
                await pool.shutdown()
                return result
            } catch {
                await pool.shutdown()
                FileHandle.standardError.write(Data("tasker: \(error)\n".utf8))
                throw ExitCode(error is TokenStoreError ? CommandFailure.refused : CommandFailure.unreachable)
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

        @OptionGroup var database: Database

        func run() async throws {
            let (token, record) = try await database.withStore { store in
                try await store.create(name: name, role: role.role, createdBy: "tasker tokens create", expiresIn: expires?.seconds)
            }
            print(token.text)
            FileHandle.standardError.write(Data("made token \"\(record.name)\" (\(record.role.rawValue)); it is shown only now\n".utf8))
        }
    }

    struct ListTokens: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "The tokens, revoked ones too, newest first.")

        @OptionGroup var database: Database

        func run() async throws {
            let tokens = try await database.withStore { try await $0.list() }
            let now = Date().timeIntervalSince1970
            for token in tokens {
                let state = token.refusal(at: now).map { $0.contains("revoked") ? "revoked" : "expired" } ?? "in force"
                let expires = token.expiresAt.map { "expires \(Self.time($0))" } ?? "no expiry"
                let used = token.lastUsedAt.map { "last used \(Self.time($0))" } ?? "never used"
                print("\(token.name)  \(token.role.rawValue)  \(state)  made \(Self.time(token.createdAt))  \(expires)  \(used)")
            }
        }

        static func time(_ seconds: Double) -> String {
            ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: seconds))
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke the token in force under a name; every node refuses it within 5 s.")

        @Argument(help: "The token's name.")
        var name: String

        @OptionGroup var database: Database

        func run() async throws {
            let record = try await database.withStore { try await $0.revoke(name: name) }
            print("revoked \"\(record.name)\" (\(record.role.rawValue))")
        }
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

/// A lifetime such as 90d, 12h, 30m or 45s.
struct Lifetime: ExpressibleByArgument {
    let seconds: Double

    init?(argument: String) {
        let units: [Character: Double] = ["d": 86_400, "h": 3_600, "m": 60, "s": 1]
        guard let unit = argument.last.flatMap({ units[$0] }), let count = Double(argument.dropLast()), count > 0, count.isFinite else { return nil }
        seconds = count * unit
    }
}
