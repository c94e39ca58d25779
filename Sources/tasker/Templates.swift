import ArgumentParser
import Foundation
import SwiftProtobuf
import TaskerProto
import Yams

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
                        client.print(response)
                    } else {
                        print("\(response.created ? "registered" : "unchanged") \(response.template.name) \(response.template.version) "
                            + "(\(response.template.steps.count) \(response.template.steps.count == 1 ? "step" : "steps"))")
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

/// Templates from a YAML or JSON file (JSON is read as the YAML it also is).
enum TemplateFile {
    static func read(_ path: String) throws -> [Tasker_V1_TaskTemplate] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CommandFailure("cannot read the template file \(path)", code: CommandFailure.badInput)
        }
        let document: Any?
        do {
            document = try Yams.load(yaml: String(decoding: data, as: UTF8.self))
        } catch {
            throw CommandFailure("\(path) is not valid YAML or JSON: \(error)", code: CommandFailure.badInput)
        }
        let items: [Any]
        switch document {
        case let list as [Any]: items = list
        case let object as [String: Any]:
            if let list = object["templates"] as? [Any] { items = list } else { items = [object] }
        default:
            throw CommandFailure("\(path) holds no template: expected a template, a list of them, or {templates: [...]}", code: CommandFailure.badInput)
        }
        return try items.enumerated().map { index, item in
            let place = items.count > 1 ? "template \(index + 1) of \(path)" : path
            guard var object = item as? [String: Any] else {
                throw CommandFailure("\(place) is not a template (an object with name, version and steps)", code: CommandFailure.badInput)
            }
            // `version: 2` in YAML is a number; a version is a string.
            if let number = object["version"] as? Int { object["version"] = String(number) }
            if let number = object["version"] as? Double { object["version"] = String(number) }
            guard JSONSerialization.isValidJSONObject(object),
                  let json = try? JSONSerialization.data(withJSONObject: object)
            else {
                throw CommandFailure("\(place) is not a template (an object with name, version and steps)", code: CommandFailure.badInput)
            }
            do {
                return try Tasker_V1_TaskTemplate(jsonUTF8Data: json)
            } catch {
                throw CommandFailure("\(place) does not match tasker.v1.TaskTemplate: \(error)", code: CommandFailure.badInput)
            }
        }
    }
}
