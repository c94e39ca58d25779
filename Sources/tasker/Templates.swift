import ArgumentParser
import Foundation
import SwiftProtobuf
import TaskerEngine
import TaskerProto

struct Templates: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Register and list task templates.", subcommands: [Apply.self, ListTemplates.self])

    struct Apply: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "apply",
            abstract: "Register the templates of a YAML or JSON file.",
            discussion: """
                The file holds one template, a list of them, or {templates: [...]}, with the fields \
                of tasker.v1.TaskTemplate (snake_case or lowerCamelCase). Registering the same \
                content again changes nothing; other content under a known name and version is refused.
                """)

        @OptionGroup var client: ClientOptions

        @Argument(help: "The file.")
        var file: String

        func run() async throws {
            try await reporting {
                let templates = try TemplateFile.read(file)
                var responses: [Tasker_V1_RegisterTaskTemplateResponse] = []
                try await client.withClient { tasker in
                    for template in templates { responses.append(try await tasker.register(template)) }
                }
                for response in responses {
                    if client.json {
                        print(CommandOutput.json(response, adding: ["created": response.created]))
                    } else {
                        print("\(response.created ? "registered" : "unchanged") \(response.template.name) \(response.template.version) "
                            + "(\(InputCheck.counted(response.template.steps.count, "step")))")
                    }
                }
            }
        }
    }

    struct ListTemplates: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List the registered templates.")

        @OptionGroup var client: ClientOptions

        func run() async throws {
            try await reporting {
                let templates = try await client.withClient { try await $0.templates() }
                if client.json {
                    client.print(Tasker_V1_ListTaskTemplatesResponse.with { $0.templates = templates })
                    return
                }
                if templates.isEmpty { print("no templates") }
                for template in templates {
                    let steps = template.steps.map { $0.dependsOn.isEmpty ? $0.name : "\($0.name)←\($0.dependsOn.joined(separator: ","))" }
                    print("\(template.name) \(template.version)  \(steps.joined(separator: "  "))")
                }
            }
        }
    }
}
