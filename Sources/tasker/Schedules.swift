import ArgumentParser
import Foundation
import SwiftProtobuf
import TaskerProto

/// `tasker schedules`: tasks made by cron.
struct Schedules: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create, list, pause, resume and delete schedules: a task of a template each time a cron fires.",
        subcommands: [Create.self, List.self, Pause.self, Resume.self, Delete.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a schedule.",
            discussion: """
                The cron has five fields, minute hour day-of-month month day-of-week (each *, a value, \
                a range a-b, a step */n or a-b/n, or a list of those), or is one of @hourly, @daily, \
                @weekly, @monthly, @yearly. Each firing makes exactly one task in the cluster; after \
                downtime only the latest missed firing runs.
                """)

        @OptionGroup var client: ClientOptions

        @Argument(help: "The schedule's name: letters, digits, '.', '_', ':' or '-'.")
        var name: String

        @Option(help: "The template to run.")
        var template: String

        @Option(help: "The cron, e.g. \"0 2 * * *\" or @hourly.")
        var cron: String

        @Option(help: "The template's version (default: the newest at each firing).")
        var version: String = ""

        @Option(help: "The IANA time zone the cron is read in, e.g. Europe/Berlin (default UTC).")
        var timezone: String = ""

        @Option(help: "Each task's context: a JSON object, or @file holding one.")
        var context: String = "{}"

        @Flag(help: "Fire no task while the last firing's task is unfinished (overlap SKIP).")
        var skipOverlap = false

        @Flag(help: "Create it paused.")
        var paused = false

        func run() async throws {
            try await reporting {
                let context = try CommandInput.object(self.context, what: "--context")
                let response = try await client.withClient { tasker in
                    try await tasker.createSchedule(.with {
                        $0.name = name
                        $0.template = template
                        $0.version = version
                        $0.cron = cron
                        $0.timezone = timezone
                        $0.context = context
                        $0.overlap = skipOverlap ? .skip : .allow
                        $0.paused = paused
                    })
                }
                if client.json {
                    print(CommandOutput.json(response.schedule, adding: ["created": response.created]))
                } else {
                    print("\(response.created ? "created" : "unchanged") schedule \(response.schedule.name): \(Schedules.next(of: response.schedule))")
                }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the schedules.")

        @OptionGroup var client: ClientOptions

        func run() async throws {
            try await reporting {
                let schedules = try await client.withClient { try await $0.schedules() }
                if client.json {
                    client.print(Tasker_V1_ListSchedulesResponse.with { $0.schedules = schedules })
                    return
                }
                let rows = schedules.map { schedule in
                    [schedule.name, schedule.template + (schedule.version.isEmpty ? "" : " " + schedule.version), schedule.cron,
                     schedule.timezone.isEmpty ? "UTC" : schedule.timezone, schedule.overlap == .skip ? "skip" : "allow",
                     schedule.paused ? "paused" : (schedule.hasNextRunAt ? CommandOutput.time(schedule.nextRunAt) : "-"),
                     schedule.hasLastRunAt ? CommandOutput.time(schedule.lastRunAt) : "-",
                     schedule.lastError.isEmpty ? schedule.lastTaskID : schedule.lastError]
                }
                print(Table.render(header: ["NAME", "TEMPLATE", "CRON", "ZONE", "OVERLAP", "NEXT", "LAST", "LAST TASK"], rows: rows))
                if schedules.isEmpty { FileHandle.standardError.write(Data("no schedules\n".utf8)) }
            }
        }
    }

    struct Pause: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Pause a schedule: it fires no task until resumed.")

        @OptionGroup var client: ClientOptions

        @Argument(help: "The schedule's name.")
        var name: String

        func run() async throws {
            try await reporting { try await Schedules.setPaused(name, true, client) }
        }
    }

    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Resume a schedule from its next firing after now.")

        @OptionGroup var client: ClientOptions

        @Argument(help: "The schedule's name.")
        var name: String

        func run() async throws {
            try await reporting { try await Schedules.setPaused(name, false, client) }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a schedule; the tasks it made stay.")

        @OptionGroup var client: ClientOptions

        @Argument(help: "The schedule's name.")
        var name: String

        func run() async throws {
            try await reporting {
                try await client.withClient { try await $0.deleteSchedule(name: name) }
                if !client.json { print("deleted schedule \(name)") }
            }
        }
    }

    static func setPaused(_ name: String, _ paused: Bool, _ client: ClientOptions) async throws {
        let schedule = try await client.withClient { try await $0.setSchedulePaused(name: name, paused: paused) }
        if client.json {
            client.print(schedule)
        } else {
            print("\(paused ? "paused" : "resumed") schedule \(schedule.name): \(next(of: schedule))")
        }
    }

    static func next(of schedule: Tasker_V1_Schedule) -> String {
        if schedule.paused { return "paused" }
        return schedule.hasNextRunAt ? "next at \(CommandOutput.time(schedule.nextRunAt))" : "no next firing"
    }
}
