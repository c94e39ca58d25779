import ArgumentParser
import Foundation
import TaskerEngine
import TaskerStore

/// `tasker prune`: deletes finished tasks now, as `tasker serve --retention` does in the background.
struct Prune: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Delete finished tasks (with their steps, history and annotations) that finished long enough ago.",
        discussion: """
            Works in the server's database, a batch at a time, while the servers run; a task that is \
            not finished is never touched. One prune runs at a time across every node.
            """)

    @Option(name: .customLong("older-than"), help: "How long ago they finished, e.g. 7d, 12h.")
    var olderThan: Lifetime

    @Option(help: "Only tasks in this status: complete, error, cancelled or resolved_manually (repeatable; default: all four).")
    var status: [FinishedStatus] = []

    @Flag(help: "Say how many would be deleted, and delete none.")
    var dryRun = false

    @Option(name: .customLong("database-url"), help: "The server's Postgres (env TASKER_DATABASE_URL).")
    var databaseURL: String? = ProcessInfoLite.environment("TASKER_DATABASE_URL")

    func run() async throws {
        try await reporting {
            guard let databaseURL else { throw ValidationError("give --database-url (or TASKER_DATABASE_URL): tasks are pruned in the server's database") }
            let criteria: PruneCriteria
            do {
                criteria = try PruneCriteria(olderThan: olderThan.seconds, statuses: status.isEmpty ? PruneCriteria.finished : status.map(\.status))
            } catch {
                throw CommandFailure("\(error)", code: CommandFailure.badInput)
            }
            let which = "finished tasks (\(criteria.statuses.map(\.contractName).joined(separator: ", "))) older than \(Self.spoken(criteria.olderThan))"
            do {
                try await ServerDatabase.withPool(databaseURL) { pool in
                    let engine = TaskEngine(pool: pool)
                    if dryRun {
                        print("would prune \(try await engine.countPrunable(criteria)) \(which)")
                    } else {
                        print("pruned \(try await engine.prune(criteria)) \(which)")
                    }
                }
            } catch {
                throw CommandFailure("cannot prune: \(error)", code: CommandFailure.unreachable)
            }
        }
    }

    static func spoken(_ seconds: Double) -> String {
        for (unit, size) in [("d", 86_400.0), ("h", 3_600), ("m", 60)] where seconds >= size && seconds.truncatingRemainder(dividingBy: size) == 0 {
            return "\(Int(seconds / size))\(unit)"
        }
        return "\(seconds.formatted())s"
    }
}

struct FinishedStatus: ExpressibleByArgument {
    let status: TaskStatus

    init?(argument: String) {
        switch argument.lowercased() {
        case "complete": status = .complete
        case "error": status = .error
        case "cancelled": status = .cancelled
        case "resolved_manually": status = .resolvedManually
        default: return nil
        }
    }

    static var allValueStrings: [String] { ["complete", "error", "cancelled", "resolved_manually"] }
}
