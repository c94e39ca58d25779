import ArgumentParser
import Foundation
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
                })
            }
            if client.json {
                client.print(response)
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

    @Argument(help: "The task id.")
    var id: String

    func run() async throws {
        try await reporting {
            let task = try await client.withClient { try await $0.task(id) }
            client.show(task)
        }
    }
}

struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List tasks, newest first.")

    @OptionGroup var client: ClientOptions

    @Option(help: "Only tasks of this template.")
    var name: String = ""

    @Option(help: "Only tasks in this status: pending, in_progress, complete, error, cancelled.")
    var status: TaskStatusArgument?

    @Option(help: "Only tasks with this tag.")
    var tag: String = ""

    @Option(help: "How many tasks at most.")
    var limit: Int = 50

    func run() async throws {
        try await reporting {
            let response = try await client.withClient { tasker in
                try await tasker.tasks(.with {
                    $0.name = name
                    if let status { $0.status = status.value }
                    $0.tag = tag
                    $0.pageSize = Int32(max(1, min(limit, 1000)))
                })
            }
            if client.json {
                client.print(response)
                return
            }
            if response.tasks.isEmpty { print("no tasks") }
            for task in response.tasks {
                let created = task.hasCreatedAt ? ISO8601DateFormatter().string(from: task.createdAt.date) : ""
                print("\(task.taskID)  \(task.name.padding(toLength: max(task.name.count, 16), withPad: " ", startingAt: 0))  "
                    + "\(task.status.contractName.padding(toLength: 11, withPad: " ", startingAt: 0))  \(created)")
            }
        }
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

    @Argument(help: "The task id.")
    var id: String

    @Option(help: "Why.")
    var reason: String = ""

    func run() async throws {
        try await reporting {
            let task = try await client.withClient { try await $0.cancel(id, reason: reason) }
            client.show(task)
        }
    }
}

struct Retry: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run a step in ERROR again, with its attempts reset.")

    @OptionGroup var client: ClientOptions

    @Argument(help: "The task id.")
    var id: String

    @Argument(help: "The step's name.")
    var step: String

    func run() async throws {
        try await reporting {
            let task = try await client.withClient { try await $0.retry(id, step: step) }
            client.show(task)
        }
    }
}

struct Resolve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Mark a step done by hand, with the results it should have had.")

    @OptionGroup var client: ClientOptions

    @Argument(help: "The task id.")
    var id: String

    @Argument(help: "The step's name.")
    var step: String

    @Option(help: "The step's results: a JSON object, or @file holding one.")
    var results: String = "{}"

    @Option(help: "Why.")
    var reason: String = ""

    func run() async throws {
        try await reporting {
            let results = try CommandInput.object(self.results, what: "--results")
            let task = try await client.withClient { try await $0.resolve(id, step: step, results: results, reason: reason) }
            client.show(task)
        }
    }
}
