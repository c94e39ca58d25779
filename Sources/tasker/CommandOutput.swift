import Foundation
import SwiftProtobuf
import TaskerProto

/// How the CLI shows what the server sends: JSON for scripts, lines for people.
enum CommandOutput {
    static let jsonOptions: JSONEncodingOptions = {
        var options = JSONEncodingOptions()
        options.preserveProtoFieldNames = true
        return options
    }()

    static func json(_ message: any SwiftProtobuf.Message) -> String {
        readable((try? message.jsonString(options: jsonOptions)) ?? "{}")
    }

    /// A message as JSON with `fields` set on its object, for those proto3 JSON leaves out
    /// when they hold their default.
    static func json(_ message: any SwiftProtobuf.Message, adding fields: [String: Any]) -> String {
        guard let text = try? message.jsonString(options: jsonOptions),
              var object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
        else { return json(message) }
        object.merge(fields) { _, added in added }
        return rendered(object) ?? json(message)
    }

    /// A Struct as compact JSON.
    static func json(_ object: Google_Protobuf_Struct) -> String {
        readable((try? object.jsonString()) ?? "{}")
    }

    /// JSON as a person reads it back: object keys sorted, so the same value always prints the
    /// same; and numbers that are whole printed whole (`7`, not `7.0`: the wire carries every
    /// JSON number as a double).
    static func readable(_ json: String) -> String {
        guard let value = try? JSONSerialization.jsonObject(with: Data(json.utf8), options: [.fragmentsAllowed]),
              let text = rendered(value)
        else { return json }
        return text
    }

    /// A parsed JSON value written back with its keys sorted.
    private static func rendered(_ value: Any) -> String? {
        guard let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .withoutEscapingSlashes, .fragmentsAllowed])
        else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    /// A task as lines of text: its header, when and by whom, its context, one line per step
    /// (with why it waits and what it returned), then its annotations.
    static func describe(_ task: Tasker_V1_Task) -> String {
        var lines = ["\(task.name) \(task.version)  \(task.taskID)  \(task.status.contractName)"]
        var times = ["created \(time(task.createdAt))"]
        if task.hasCompletedAt {
            let took = task.completedAt.date.timeIntervalSince(task.createdAt.date)
            times.append("finished \(time(task.completedAt)) (after \(seconds(took)))")
        } else if task.hasUpdatedAt {
            times.append("updated \(time(task.updatedAt))")
        }
        if task.hasStartAt { times.append("starts \(time(task.startAt))") }
        lines.append("  " + times.joined(separator: ", "))
        let about = [("priority", task.priority == 3 || task.priority == 0 ? "" : String(task.priority)), ("tags", task.tags.joined(separator: ", ")), ("initiator", task.initiator), ("source", task.sourceSystem), ("reason", task.reason)]
            .filter { !$0.1.isEmpty }.map { "\($0.0): \($0.1)" }
        if !about.isEmpty { lines.append("  " + about.joined(separator: "  ")) }
        if !task.context.fields.isEmpty { lines.append("  context: \(json(task.context))") }
        for step in task.steps {
            var line = "  \(pad(step.name, 22)) \(pad(step.status.contractName, 18)) \(attempts(of: step))"
            if step.hasLastError, !step.lastError.message.isEmpty, step.status != .complete { line += "  last error: \(step.lastError.message)" }
            lines.append(line)
            if !step.waitingReason.isEmpty { lines.append("      waiting: \(step.waitingReason)") }
            if !step.concurrencyKey.isEmpty { lines.append("      concurrency key: \(step.concurrencyKey)") }
            if !step.rateLimitKeys.isEmpty { lines.append("      rate limit keys: \(step.rateLimitKeys.joined(separator: ", "))") }
            if !step.results.fields.isEmpty { lines.append("      results: \(json(step.results))") }
        }
        if !task.annotations.isEmpty {
            lines.append("  annotations:")
            for note in task.annotations {
                let on = note.stepName.isEmpty ? "" : " (\(note.stepName))"
                lines.append("    \(time(note.createdAt))  \(note.type)\(on): \(json(note.annotation))")
            }
        }
        return lines.joined(separator: "\n")
    }

    /// Where a step stands in its attempts, in words: `retry_limit` counts every attempt, the
    /// first one too. "attempt 1 of 3", "attempt 2 of 3 failed" (it waits for the next),
    /// "attempt 1 of 3, failed for good", "not attempted (up to 3)".
    static func attempts(of step: Tasker_V1_WorkflowStep) -> String {
        let of = step.retryLimit > 0 ? " of \(step.retryLimit)" : ""
        guard step.attempts > 0 else { return step.retryLimit > 0 ? "not attempted (up to \(step.retryLimit))" : "not attempted" }
        switch step.status {
        case .error: return "attempt \(step.attempts)\(of), failed for good"
        case .waitingForRetry: return "attempt \(step.attempts)\(of) failed"
        default: return "attempt \(step.attempts)\(of)"
        }
    }

    /// `2026-12-02T05:19:07Z`.
    static func time(_ timestamp: Google_Protobuf_Timestamp) -> String {
        ISO8601DateFormatter().string(from: timestamp.date)
    }

    /// `0.84 s`, `2.1 s`, `3 min 20 s`, `2 h 5 min`.
    static func seconds(_ interval: TimeInterval) -> String {
        switch interval {
        case ..<1: String(format: "%.2f s", interval)
        case ..<60: String(format: "%.1f s", interval)
        case ..<3600: "\(Int(interval) / 60) min \(Int(interval) % 60) s"
        default: "\(Int(interval) / 3600) h \(Int(interval) % 3600 / 60) min"
        }
    }

    /// `text`, padded with spaces to `width`.
    static func pad(_ text: String, _ width: Int) -> String {
        text.padding(toLength: max(text.count, width), withPad: " ", startingAt: 0)
    }
}
