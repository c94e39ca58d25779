import Foundation
import TaskerAuth
import TaskerDev
import TaskerServer
import TaskerStore
import Testing

@Suite struct APITokenTests {
    @Test func aNewTokenHasTheShapeItIsCheckedFor() {
        let tokens = (0..<200).map { _ in APIToken.generate().text }
        for token in tokens {
            #expect(token.hasPrefix("tkr_") && token.utf8.count == 36)
            #expect(APIToken(token) != nil)
        }
        #expect(Set(tokens).count == tokens.count, "no two alike")
        // Every base62 character turns up across 200 × 32 of them.
        #expect(Set(tokens.flatMap { $0.dropFirst(4) }).count == 62)
    }

    @Test func textThatIsNotATokenIsNotTakenForOne() {
        for text in ["", "tkr_", "tkr_" + String(repeating: "a", count: 31), "tkr_" + String(repeating: "a", count: 33),
                     "tkx_" + String(repeating: "a", count: 32), "tkr_" + String(repeating: "a", count: 31) + "-",
                     "tkr_" + String(repeating: "é", count: 16), "Bearer tkr_" + String(repeating: "a", count: 32)] {
            #expect(APIToken(text) == nil, "\(text)")
        }
    }

    @Test func theHashIsSHA256OfTheText() throws {
        let token = try #require(APIToken("tkr_" + String(repeating: "a", count: 32)))
        // sha256 of "tkr_" followed by 32 "a", as `printf %s ... | sha256sum` gives it.
        #expect(token.sha256Hex == "789463d7256decfad3c911c68642268d1b1b3be2f4ac7eacbbf5553287e7951b")
    }
}

@Suite struct RoleTests {
    @Test func eachRoleIncludesTheOnesBeforeItButWorkerStandsAlone() {
        #expect(Role.viewer.permits(.viewer) && !Role.viewer.permits(.submitter) && !Role.viewer.permits(.worker))
        #expect(Role.submitter.permits(.viewer) && Role.submitter.permits(.submitter) && !Role.submitter.permits(.worker))
        #expect(Role.worker.permits(.worker) && !Role.worker.permits(.viewer) && !Role.worker.permits(.submitter))
        #expect(Role.allCases.allSatisfy { Role.admin.permits($0) })
        #expect(!Role.allCases.filter { $0 != .admin }.contains { $0.permits(.admin) })
    }

    @Test func everyMethodNeedsTheRoleTheTableGives() {
        #expect(Role.required(for: "/grpc.health.v1.Health/Check") == nil)
        #expect(Role.required(for: "/grpc.health.v1.Health/Watch") == nil)
        #expect(Role.required(for: "/tasker.v1.Tasker/GetTask") == .viewer)
        #expect(Role.required(for: "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo") == .viewer)
        #expect(Role.required(for: "/tasker.v1.Tasker/SubmitTask") == .submitter)
        #expect(Role.required(for: "/tasker.v1.Tasker/RegisterTaskTemplate") == .submitter)
        #expect(Role.required(for: "/tasker.v1.Workers/Connect") == .worker)
        #expect(Role.required(for: "/tasker.v1.Admin/CreateToken") == .admin)
        #expect(Role.required(for: "/tasker.v1.Tasker/SomethingNew") == .admin, "what the table does not name needs admin")
    }
}

@Suite struct TokenStoreTests {
    let pool: PostgresPool
    let store: TokenStore

    init() async throws {
        pool = PostgresPool(url: try PrivatePostgres.shared().createDatabase(), size: 2)
        try await Migrator().migrate(pool)
        store = TokenStore(pool: pool)
    }

    @Test func aTokenIsFoundByItsTextAndOnlyItsHashIsKept() async throws {
        let (token, record) = try await store.create(name: "ci", role: .submitter, createdBy: "admin-1")
        #expect(record.name == "ci" && record.role == .submitter && record.createdBy == "admin-1")
        #expect(record.expiresAt == nil && record.revokedAt == nil && record.refusal(at: Date().timeIntervalSince1970) == nil)
        #expect(try await store.find(token) == record)
        #expect(try await store.find(APIToken.generate()) == nil)
        let stored = try await pool.withConnection { connection in
            try connection.query("SELECT encode(token_sha256, 'hex') AS hash, length(token_sha256) AS length FROM api_tokens")
        }
        #expect(stored.first?["hash"] == token.sha256Hex)
        #expect(stored.first?.int("length") == 32)
    }

    @Test func aNameInForceIsTakenUntilItIsRevoked() async throws {
        let (first, _) = try await store.create(name: "deploy", role: .viewer, createdBy: "")
        await #expect(throws: TokenStoreError.nameTaken("deploy")) {
            _ = try await store.create(name: "deploy", role: .admin, createdBy: "")
        }
        let revoked = try await store.revoke(name: "deploy")
        #expect(revoked.revokedAt != nil)
        #expect(try await store.find(first)?.refusal(at: Date().timeIntervalSince1970) == "the token \"deploy\" was revoked")
        await #expect(throws: TokenStoreError.noSuchToken("deploy")) { _ = try await store.revoke(name: "deploy") }
        let (second, renewed) = try await store.create(name: "deploy", role: .admin, createdBy: "")
        #expect(renewed.role == .admin && second != first)
        #expect(try await store.list().map(\.name) == ["deploy", "deploy"])
    }

    @Test func anExpiredTokenSaysSo() async throws {
        let (token, record) = try await store.create(name: "short", role: .viewer, createdBy: "", expiresIn: 0.2)
        let expires = try #require(record.expiresAt)
        #expect(abs(expires - Date().timeIntervalSince1970 - 0.2) < 5)
        #expect(try await store.find(token)?.refusal(at: expires + 1) == "the token \"short\" expired")
    }

    @Test func lastUseIsWrittenAtMostOnceAMinute() async throws {
        let (token, record) = try await store.create(name: "used", role: .viewer, createdBy: "")
        try await store.touch(id: record.id)
        let first = try #require(try await store.find(token)?.lastUsedAt)
        try await Task.sleep(for: .milliseconds(20))
        try await store.touch(id: record.id)
        #expect(try await store.find(token)?.lastUsedAt == first)
    }

    @Test func badNamesAreRefused() async throws {
        for name in ["", String(repeating: "n", count: 129), "a\u{0}b"] {
            await #expect(throws: TokenStoreError.self) { _ = try await store.create(name: name, role: .viewer, createdBy: "") }
        }
    }
}
