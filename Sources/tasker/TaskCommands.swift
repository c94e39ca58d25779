import ArgumentParser
import Foundation
import SwiftProtobuf
import TaskerProto

struct Submit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Submit a task of a registered template.")

    @OptionGroup var client: ClientOptions

    @Argument(help: "The template's name.")
    var name: String

    @Option(help: "The task's context: a JSON object, or @file holding one.")
    var context: String = "{}"

    @Option(help: "The template version (default: the newest).")
    var version: String = ""

    @Option(help: "Why the task is submitted.")
    var reason: String = ""

    @Option(help: "A tag (repeatable).")
    var tag: [String] = []

    @Option(help: "A submit with a key already used for this template returns that task instead.")
    var idempotencyKey: String = ""

    @Option(help: "Start later: a time in ISO 8601 (2026-12-06T02:00:00Z) or a span from now (+10m, +2h, +1d).")
    var startAt: StartTime?

    @Option(help: "1 (first) to 5 (last); default 3. Among one handler's ready steps, higher goes first.")
    var priority: Int32 = 0

    func validate() throws {
        guard (0...5).contains(priority) else { throw ValidationError("--priority is 1 (first) to 5 (last); not \(priority)") }
    }

    @Flag(help: "Follow the task until it finishes, as `tasker watch` does.")
    var watch = false

    func run() async throws {
        try await reporting {
            let context = try CommandInput.object(self.context, what: "--context")
            let response = try await client.withClient { tasker in
                try await tasker.submit(.with {
                    $0.name = name
                    $0.version = version
                    $0.context = context
                    $0.reason = reason
                    $0.tags = tag
                    $0.idempotencyKey = idempotencyKey
                    $0.priority = priority
                    if let startAt { $0.startAt = Google_Protobuf_Timestamp(date: startAt.date) }
                })
            }
            if client.json {
                // proto3 JSON leaves out a false `created`; a script asks for it either way.
                print(CommandOutput.json(response, adding: ["created": response.created]))
            } else {
                print("\(response.created ? "submitted" : "already submitted") \(response.task.name) \(response.task.taskID)")
            }
            if watch {
                try await TaskWatcher(options: client).follow(response.task.taskID)
            }
        }
    }
}

struct Get: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show a task and its steps.")

    @OptionGroup var client: ClientOptions

    @OptionGroup var taskID: TaskIDArgument

    func run() async throws {
        try await reporting {
            let task = try await client.withClient { try await $0.task(taskID.value) }
            client.show(task)
        }
    }
}

struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List tasks, newest first.",
        discussion: """
            Prints --limit tasks (fetched in pages of up to 500) and, when more follow, the \
            --page-token that goes on from there (on standard error, so that standard output \
            holds only tasks). --all pages through every task that matches.
            """)

    @OptionGroup var client: ClientOptions

    @Option(help: "Only tasks of this template.")
    var name: String = ""

    @Option(help: "Only tasks in this status: pending, in_progress, complete, error, cancelled, resolved_manually.")
    var status: TaskStatusArgument?

    @Option(help: "Only tasks with this tag.")
    var tag: String = ""

    @Option(help: "How many tasks at most (default 50).")
    var limit: Int?

    @Flag(help: "Every task that matches, page after page.")
    var all = false

    @Option(name: .customLong("page-token"), help: "Go on from where a listing stopped: the token it printed.")
    var pageToken: String = ""

    /// The server's largest page.
    static let largestPage = 500

    func validate() throws {
        if let limit, limit < 1 { throw ValidationError("--limit is \(limit); it counts tasks, so it is 1 or more") }
        if all, limit != nil { throw ValidationError("--all lists every task; leave out --limit, or leave out --all") }
    }

    func run() async throws {
        try await reporting {
            let wanted = all ? Int.max : limit ?? 50
            var listed: [Tasker_V1_Task] = []
            var count = 0
            // A column only widens, page after page; the header is printed with the first.
            var widths = Self.header.map(\.count)
            var headed = false
            let next = try await client.withClient { tasker -> String in
                var token = pageToken
                repeat {
                    let response = try await tasker.tasks(.with {
                        $0.name = name
                        if let status { $0.status = status.value }
                        $0.tag = tag
                        $0.pageSize = Int32(min(wanted - count, Self.largestPage))
                        $0.pageToken = token
                    })
                    count += response.tasks.count
                    token = response.nextPageToken
                    if client.json {
                        listed += response.tasks
                    } else if !response.tasks.isEmpty {
                        // Page by page, so that --all never holds every task.
                        let rows = (headed ? [] : [Self.header]) + response.tasks.map(Self.row)
                        widths = zip(Table.widths(of: rows), widths).map { max($0, $1) }
                        print(Table.render(rows, widths: widths))
                        headed = true
                    }
                } while !token.isEmpty && count < wanted
                return token
            }
            if client.json {
                client.print(Tasker_V1_ListTasksResponse.with {
                    $0.tasks = listed
                    $0.nextPageToken = next
                })
                return
            }
            if count == 0 { print(pageToken.isEmpty ? "no tasks" : "no more tasks") }
            if !next.isEmpty {
                FileHandle.standardError.write(Data("more tasks follow: --page-token \(next)\n".utf8))
            }
        }
    }

    static let header = ["TASK ID", "TEMPLATE", "VERSION", "STATUS", "CREATED"]

    static func row(_ task: Tasker_V1_Task) -> [String] {
        [task.taskID, task.name, task.version, task.status.contractName, task.hasCreatedAt ? CommandOutput.time(task.createdAt) : ""]
    }
}

struct TaskStatusArgument: ExpressibleByArgument {
    let value: Tasker_V1_TaskStatus

    init?(argument: String) {
        let statuses: [String: Tasker_V1_TaskStatus] = [
            "pending": .pending, "in_progress": .inProgress, "complete": .complete, "error": .error,
            "cancelled": .cancelled, "resolved_manually": .resolvedManually,
        ]
        guard let value = statuses[argument.lowercased().replacingOccurrences(of: "-", with: "_")] else { return nil }
        self.value = value
    }
}

struct Cancel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Cancel a task: no step of it starts again.")

    @OptionGroup var client: ClientOptions

    @OptionGroup var taskID: TaskIDArgument

    @Option(help: "Why.")
    var reason: String = ""

    func run() async throws {
        try await reporting {
            let task = try await client.withClient { try await $0.cancel(taskID.value, reason: reason) }
            client.show(task)
        }
    }
}

struct Retry: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run a step in ERROR again, with its attempts reset.")

    @OptionGroup var client: ClientOptions

    @OptionGroup var taskID: TaskIDArgument

    @Argument(help: "The step's name.")
    var step: String

    func run() async throws {
        try await reporting {
            let task = try await client.withClient { try await $0.retry(taskID.value, step: step) }
            client.show(task)
        }
    }
}

struct Resolve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Mark a step done by hand, with the results it should have had.")

    @OptionGroup var client: ClientOptions

    @OptionGroup var taskID: TaskIDArgument

    @Argument(help: "The step's name.")
    var step: String

    @Option(help: "The step's results: a JSON object, or @file holding one.")
    var results: String = "{}"

    @Option(help: "Why.")
    var reason: String = ""

    func run() async throws {
        try await reporting {
            let results = try CommandInput.object(self.results, what: "--results")
            let task = try await client.withClient { try await $0.resolve(taskID.value, step: step, results: results, reason: reason) }
            client.show(task)
        }
    }
}
