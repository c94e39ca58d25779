import Foundation
import SwiftProtobuf
import TaskerProto
import TaskerStore

/// Reading stored values back into messages.
enum Rows {
    static func timestamp(_ epoch: String?) -> Google_Protobuf_Timestamp? {
        guard let epoch else { return nil }
        // Postgres writes the epoch in decimal to the microsecond: read it digit for digit, as a
        // Double would not give back the microseconds written.
        let parts = epoch.split(separator: ".", maxSplits: 1)
        if parts.count <= 2, let whole = Int64(parts[0]), !parts[0].hasPrefix("-") {
            let fraction = parts.count == 2 ? parts[1] : ""
            if fraction.count <= 9, fraction.allSatisfy(\.isASCII), let digits = Int32(fraction.isEmpty ? "0" : String(fraction)) {
                var nanos = digits
                for _ in fraction.count..<9 { nanos *= 10 }
                return Google_Protobuf_Timestamp(seconds: whole, nanos: nanos)
            }
        }
        guard let seconds = Double(epoch) else { return nil }
        return Google_Protobuf_Timestamp(roundingTimeIntervalSince1970: seconds, rule: .toNearestOrAwayFromZero)
    }

    /// A step's `last_error` as stored: why, whether retryable, the attempt (when one counts)
    /// and when.
    static func stepErrorJSON(_ message: String, retryable: Bool, attempt: Int32?) -> String {
        var fields: [String: Google_Protobuf_Value] = [
            "message": .init(stringValue: message), "retryable": .init(boolValue: retryable),
            "at": .init(numberValue: Date().timeIntervalSince1970),
        ]
        if let attempt { fields["attempt"] = .init(numberValue: Double(attempt)) }
        return (try? json(Google_Protobuf_Struct(fields: fields))) ?? "{}"
    }

    /// A time as Postgres reads it exactly: UTC ISO 8601 to the microsecond (finer is cut).
    static func postgresTime(_ time: Google_Protobuf_Timestamp) -> String {
        var seconds = time_t(time.seconds)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
            Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), Int(time.nanos / 1000))
    }

    /// A stored JSON object; nil for NULL. Unreadable JSON is an error, never an empty object.
    static func object(_ json: String?) throws(EngineError) -> Google_Protobuf_Struct? {
        guard let json else { return nil }
        do {
            return try StoredJSON.object(json)
        } catch {
            throw .internal("\(error)")
        }
    }

    static func strings(_ json: String?) -> [String] {
        guard let data = json?.data(using: .utf8) else { return [] }
        return (try? JSONDecoder().decode([String].self, from: data)) ?? []
    }

    static func json(_ object: Google_Protobuf_Struct) throws(EngineError) -> String {
        do {
            return try object.jsonString()
        } catch {
            throw .invalidArgument("the value cannot be stored as JSON: \(error)")
        }
    }

    static func stepError(_ json: String?) throws(EngineError) -> Tasker_V1_StepError? {
        guard let object = try object(json) else { return nil }
        var error = Tasker_V1_StepError()
        error.message = object.fields["message"]?.stringValue ?? ""
        error.retryable = object.fields["retryable"]?.boolValue ?? false
        error.attempt = Int32(exactly: object.fields["attempt"]?.numberValue ?? 0) ?? 0
        if let at = object.fields["at"]?.numberValue {
            error.at = Google_Protobuf_Timestamp(roundingTimeIntervalSince1970: at, rule: .toNearestOrAwayFromZero)
        }
        return error
    }

    /// The columns of a task, with epoch seconds for its times and JSON for its tags.
    static let taskColumns = """
        task_id::text AS task_id, name, version, status, context::text AS context, initiator, source_system,
        reason, array_to_json(tags)::text AS tags, extract(epoch FROM created_at)::text AS created_at,
        extract(epoch FROM updated_at)::text AS updated_at, extract(epoch FROM completed_at)::text AS completed_at,
        extract(epoch FROM start_at)::text AS start_at, priority, extract(epoch FROM deadline_at)::text AS deadline_at,
        concurrency_key, concurrency_key IS NULL OR admitted_at IS NOT NULL AS admitted
        """

    static let stepColumns = """
        s.step_id::text AS step_id, s.task_id::text AS task_id, s.name, s.handler, s.status, s.attempts,
        s.retry_limit, s.retryable, s.skippable, s.results::text AS results, s.last_error::text AS last_error,
        extract(epoch FROM s.next_attempt_at)::text AS next_attempt_at,
        extract(epoch FROM s.last_attempted_at)::text AS last_attempted_at,
        extract(epoch FROM s.completed_at)::text AS completed_at,
        array_to_json(s.depends_on)::text AS depends_on, s.concurrency_key, s.concurrency_max, s.rate_limits
        """

    static func task(_ row: PostgresRow) throws(EngineError) -> Tasker_V1_Task {
        var task = Tasker_V1_Task()
        task.taskID = row["task_id"] ?? ""
        task.name = row["name"] ?? ""
        task.version = row["version"] ?? ""
        task.status = TaskStatus(rawValue: row.int("status") ?? 0) ?? .unspecified
        if let context = try object(row["context"]) { task.context = context }
        task.initiator = row["initiator"] ?? ""
        task.sourceSystem = row["source_system"] ?? ""
        task.reason = row["reason"] ?? ""
        task.tags = strings(row["tags"])
        if let at = timestamp(row["created_at"]) { task.createdAt = at }
        if let at = timestamp(row["updated_at"]) { task.updatedAt = at }
        if let at = timestamp(row["completed_at"]) { task.completedAt = at }
        if let at = timestamp(row["start_at"]) { task.startAt = at }
        task.priority = Int32(row.int("priority") ?? 3)
        if let at = timestamp(row["deadline_at"]) { task.deadlineAt = at }
        task.concurrencyKey = row["concurrency_key"] ?? ""
        task.admitted = row.bool("admitted") ?? true
        return task
    }

    static func step(_ row: PostgresRow) throws(EngineError) -> Tasker_V1_WorkflowStep {
        var step = Tasker_V1_WorkflowStep()
        step.stepID = row["step_id"] ?? ""
        step.name = row["name"] ?? ""
        step.handler = row["handler"] ?? ""
        step.status = StepStatus(rawValue: row.int("status") ?? 0) ?? .unspecified
        step.dependsOn = strings(row["depends_on"])
        step.attempts = Int32(row.int("attempts") ?? 0)
        step.retryLimit = Int32(row.int("retry_limit") ?? 0)
        step.retryable = row.bool("retryable") ?? true
        step.skippable = row.bool("skippable") ?? false
        if let results = try object(row["results"]) { step.results = results }
        if let error = try stepError(row["last_error"]) { step.lastError = error }
        if let at = timestamp(row["next_attempt_at"]) { step.nextAttemptAt = at }
        if let at = timestamp(row["last_attempted_at"]) { step.lastAttemptedAt = at }
        if let at = timestamp(row["completed_at"]) { step.completedAt = at }
        step.concurrencyKey = row["concurrency_key"] ?? ""
        if let limits = StepRateLimits(stored: row["rate_limits"]) { step.rateLimitKeys = limits.keys }
        return step
    }
}
