import Foundation
import SwiftProtobuf
import TaskerEngine
import TaskerProto
import TaskerServer
import Yams

/// Templates from a YAML or JSON file (JSON is read as the YAML it also is). Every problem is
/// named by its place: the line and column of a syntax error, the step and field of a wrong
/// field, all of them at once.
enum TemplateFile {
    static func read(_ path: String) throws -> [Tasker_V1_TaskTemplate] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CommandFailure("cannot read the template file \(path)", code: CommandFailure.badInput)
        }
        let document: Any?
        do {
            document = try Yams.load(yaml: String(decoding: data, as: UTF8.self))
        } catch {
            throw CommandFailure(syntaxError(error, in: path), code: CommandFailure.badInput)
        }
        let items: [Any]
        switch document {
        case let list as [Any]: items = list
        case let object as [String: Any]:
            if let list = object["templates"] as? [Any] { items = list } else { items = [object] }
        default:
            throw CommandFailure("\(path) holds no template: expected a template, a list of them, or {templates: [...]}", code: CommandFailure.badInput)
        }
        var problems: [String] = []
        var templates: [Tasker_V1_TaskTemplate] = []
        for (index, item) in items.enumerated() {
            let place = items.count > 1 ? "template \(index + 1)" : ""
            guard var object = item as? [String: Any] else {
                problems.append(joined(place, "not a template (an object with name, version and steps)"))
                continue
            }
            // `version: 2` in YAML is a number; a version is a string.
            if let number = object["version"] as? Int { object["version"] = String(number) }
            if let number = object["version"] as? Double { object["version"] = String(number) }
            problems += namingAttempts(in: &object).map { joined(place, $0) }
            let found = ProtoJSONCheck.served.problems(in: object, as: ".tasker.v1.TaskTemplate", label: stepLabel)
            guard found.isEmpty else {
                problems += found.map { joined(place, $0.description) }
                continue
            }
            do {
                let json = try JSONSerialization.data(withJSONObject: object)
                templates.append(try Tasker_V1_TaskTemplate(jsonUTF8Data: json))
            } catch {
                problems.append(joined(place, "does not match tasker.v1.TaskTemplate: \(error)"))
            }
        }
        switch problems.count {
        case 0: return templates
        case 1: throw CommandFailure("\(path): \(problems[0])", code: CommandFailure.badInput)
        default:
            throw CommandFailure("\(path) has \(problems.count) problems:\n" + problems.map { "  " + $0 }.joined(separator: "\n"),
                                 code: CommandFailure.badInput)
        }
    }

    /// `max_attempts`, a file's name for what the contract calls `retry_limit` (attempts in
    /// all, the first one too), made `retry_limit`; a step that gives both is a problem.
    static func namingAttempts(in object: inout [String: Any]) -> [String] {
        guard var steps = object["steps"] as? [Any] else { return [] }
        var problems: [String] = []
        for (index, item) in steps.enumerated() {
            guard var step = item as? [String: Any] else { continue }
            let given = ["max_attempts", "maxAttempts"].filter { step[$0] != nil }
            guard let name = given.first else { continue }
            let value = step.removeValue(forKey: name)
            if given.count > 1 || step["retry_limit"] != nil || step["retryLimit"] != nil {
                problems.append("\(stepLabel(field: "steps", index: index, element: step)): max_attempts and retry_limit are one setting; give one")
                given.forEach { step[$0] = nil }
            } else {
                step["retry_limit"] = value
            }
            steps[index] = step
        }
        object["steps"] = steps
        return problems
    }

    /// `step 'pay' (steps[2])`: a step by its name and where it is in the list.
    static func stepLabel(field: String, index: Int, element: [String: Any]) -> String {
        guard field == "steps", let name = element["name"] as? String, !name.isEmpty else { return "\(field)[\(index)]" }
        return "step \(InputCheck.quoted(name)) (steps[\(index)])"
    }

    static func joined(_ place: String, _ problem: String) -> String {
        place.isEmpty ? problem : "\(place), \(problem)"
    }

    /// `t.yaml:8:1: did not find expected ',' or ']' (while parsing a flow sequence from line 7, column 14)`.
    static func syntaxError(_ error: any Error, in path: String) -> String {
        switch error as? YamlError {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            let within = context.map { " (\($0.text) from line \($0.mark.line), column \($0.mark.column))" } ?? ""
            return "\(path):\(mark.line):\(mark.column): \(problem)\(within)"
        case .reader(let problem, _, _, _):
            return "\(path) is not valid YAML or JSON: \(problem)"
        default:
            return "\(path) is not valid YAML or JSON: \(error)"
        }
    }
}
