import Foundation
import SwiftProtobuf
import TaskerMetrics
import TaskerProto
import TaskerStore

/// Schedules in Postgres, and their firing. Every node fires what is due: a firing submits its
/// task with the idempotency key `schedule:<name>:<fire time>`, then moves the schedule's
/// next_run_at on only if it still holds the value read. Two nodes firing at once submit the
/// same key and get the same task; a node that dies between the two leaves the firing due, and
/// the next node to look makes (or finds) its one task. So each firing makes exactly one task.
extension TaskEngine {
    static let scheduleColumns = """
        name, template, version, cron, timezone, context::text AS context, paused, overlap,
        extract(epoch FROM next_run_at)::text AS next_run_at, extract(epoch FROM last_run_at)::text AS last_run_at,
        last_task_id::text AS last_task_id, last_error, extract(epoch FROM created_at)::text AS created_at
        """

    /// Creates a schedule after checking every field, its template and its context; the same
    /// schedule again answers created = false.
    public func createSchedule(_ schedule: Tasker_V1_Schedule) async throws(EngineError) -> (schedule: Tasker_V1_Schedule, created: Bool) {
        try Self.checkScheduleName(schedule.name)
        try InputCheck.text(schedule.cron, "cron", limit: InputLimits.labelBytes)
        try InputCheck.text(schedule.timezone, "timezone", limit: InputLimits.nameBytes)
        let cron = try CronSchedule(parsing: schedule.cron, zone: schedule.timezone, allowingSeconds: cronWithSeconds)
        let overlap: Tasker_V1_ScheduleOverlap
        switch schedule.overlap {
        case .unspecified, .allow: overlap = .allow
        case .skip: overlap = .skip
        case .UNRECOGNIZED(let value): throw .invalidArgument("overlap \(value) is neither ALLOW (1) nor SKIP (2)")
        }
        // The template and the context are checked as a submit checks them, so that a firing
        // does not fail on what could be told now.
        var submit = Tasker_V1_SubmitTaskRequest()
        submit.name = schedule.template
        submit.version = schedule.version
        submit.context = schedule.context
        let contextJSON = try Self.check(submit)
        let known = try await template(name: schedule.template, version: schedule.version)
        try await validate(submit, against: known.validated)
        let now = Date().timeIntervalSince1970
        guard let next = cron.next(after: now) else {
            throw .invalidArgument("cron \(InputCheck.quoted(schedule.cron)) never fires: no time in the next five years matches it")
        }
        let parameters: [String?] = [
            schedule.name, schedule.template, schedule.version, schedule.cron.trimmingCharacters(in: .whitespaces), schedule.timezone,
            contextJSON, schedule.paused ? "t" : "f", String(overlap.rawValue), schedule.paused ? nil : String(next),
        ]
        let (row, created) = try await read { connection -> (PostgresRow?, Bool) in
            let inserted = try connection.query(
                """
                INSERT INTO schedules (name, template, version, cron, timezone, context, paused, overlap, next_run_at)
                VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::boolean, $8::smallint, to_timestamp($9::float8))
                ON CONFLICT (name) DO NOTHING RETURNING \(Self.scheduleColumns)
                """, parameters)
            if let row = inserted.first { return (row, true) }
            let existing = try connection.query(
                """
                SELECT \(Self.scheduleColumns), (template, version, cron, timezone, context, overlap) = ($2, $3, $4, $5, $6::jsonb, $7::smallint) AS same
                FROM schedules WHERE name = $1
                """, [parameters[0], parameters[1], parameters[2], parameters[3], parameters[4], parameters[5], parameters[7]])
            guard let row = existing.first else { return (nil, false) }
            guard row.bool("same") == true else {
                throw EngineError.alreadyExists(
                    "schedule \(InputCheck.quoted(schedule.name)) already exists with another template, cron, time zone, context or overlap: delete it first, or use another name")
            }
            return (row, false)
        }
        guard let row else { throw .unavailable("schedule \(InputCheck.quoted(schedule.name)) was deleted while it was created; create it again") }
        return (try Self.schedule(row), created)
    }

    /// Every schedule, by name.
    public func listSchedules() async throws(EngineError) -> [Tasker_V1_Schedule] {
        let rows = try await read { connection in
            try connection.query("SELECT \(Self.scheduleColumns) FROM schedules ORDER BY name LIMIT \(InputLimits.schedules)")
        }
        var schedules: [Tasker_V1_Schedule] = []
        for row in rows { schedules.append(try Self.schedule(row)) }
        return schedules
    }

    /// Deletes a schedule; the tasks it made stay. NOT_FOUND when there is none of that name.
    public func deleteSchedule(_ name: String) async throws(EngineError) {
        try Self.checkScheduleName(name)
        let deleted = try await read { connection in try connection.query("DELETE FROM schedules WHERE name = $1 RETURNING name", [name]) }
        guard !deleted.isEmpty else { throw .notFound("no schedule \(InputCheck.quoted(name))") }
    }

    /// Pauses a schedule (it has no next firing), or resumes it from its next firing after
    /// now: firings missed while paused do not run.
    public func setSchedulePaused(_ name: String, paused: Bool) async throws(EngineError) -> Tasker_V1_Schedule {
        try Self.checkScheduleName(name)
        let withSeconds = cronWithSeconds
        let row = try await transaction { connection, _ -> PostgresRow? in
            guard let current = try connection.query("SELECT cron, timezone FROM schedules WHERE name = $1 FOR UPDATE", [name]).first else { return nil }
            var next: String?
            if !paused {
                let cron = try CronSchedule(parsing: current["cron"] ?? "", zone: current["timezone"] ?? "", allowingSeconds: withSeconds)
                next = cron.next(after: Date().timeIntervalSince1970).map { String($0) }
            }
            return try connection.query(
                """
                UPDATE schedules SET paused = $2::boolean, next_run_at = to_timestamp($3::float8) WHERE name = $1
                RETURNING \(Self.scheduleColumns)
                """, [name, paused ? "t" : "f", next]).first
        }
        guard let row else { throw .notFound("no schedule \(InputCheck.quoted(name))") }
        return try Self.schedule(row)
    }

    /// Fires every schedule whose time has come, by Postgres's clock: for each, one task for
    /// its latest missed firing (none for a SKIP schedule whose last task is unfinished), and
    /// its next firing after now. Returns how many tasks were made, and the seconds until the
    /// next firing of any schedule (nil when none is due later).
    public func fireDueSchedules(limit: Int = 100) async throws(EngineError) -> (made: Int, nextIn: Double?) {
        let due = try await read { connection in
            try connection.query(
                """
                SELECT \(Self.scheduleColumns), extract(epoch FROM next_run_at) AS due_epoch, extract(epoch FROM now())::float8 AS now
                FROM schedules WHERE next_run_at <= now() ORDER BY next_run_at LIMIT $1
                """, [String(limit)])
        }
        var made = 0
        for row in due {
            if try await fire(row) { made += 1 }
        }
        let next = try await read { connection in
            try connection.query("SELECT extract(epoch FROM min(next_run_at) - now())::float8 AS next_in FROM schedules")
        }
        return (made, next.first?.double("next_in").map { max($0, 0) })
    }

    /// Fires one due schedule; true when it made a task.
    private func fire(_ row: PostgresRow) async throws(EngineError) -> Bool {
        guard let name = row["name"], let dueText = row["due_epoch"], let due = Double(dueText), let now = row.double("now") else { return false }
        let cron: CronSchedule
        do {
            cron = try CronSchedule(parsing: row["cron"] ?? "", zone: row["timezone"] ?? "", allowingSeconds: cronWithSeconds)
        } catch {
            // Stored before this node's rules (seconds taken only in tests): it waits, paused.
            try await settle(name, due: dueText, next: nil, task: nil, firedAt: nil, error: "the cron no longer parses: \(error.description)")
            return false
        }
        // After downtime only the latest missed firing runs.
        var fireAt = due
        while let later = cron.next(after: fireAt), later <= now { fireAt = later }
        let next = cron.next(after: max(now, fireAt))
        let firing = Self.scheduleTime(fireAt)
        if row.int("overlap") == Int(Tasker_V1_ScheduleOverlap.skip.rawValue), let last = row["last_task_id"], try await isUnfinished(last) {
            TaskerMetric.scheduleFirings(name, "skipped").increment()
            try await settle(name, due: dueText, next: next, task: nil, firedAt: nil,
                             error: "skipped the firing at \(firing): task \(last) of an earlier firing is unfinished (overlap SKIP)")
            return false
        }
        var submit = Tasker_V1_SubmitTaskRequest()
        submit.name = row["template"] ?? ""
        submit.version = row["version"] ?? ""
        submit.context = try Rows.object(row["context"]) ?? Google_Protobuf_Struct()
        submit.idempotencyKey = "schedule:\(name):\(firing)"
        submit.initiator = "schedule \(name)"
        submit.reason = "the schedule fired at \(firing)"
        do {
            let (task, created) = try await submitTask(submit)
            if created { TaskerMetric.scheduleFirings(name, "made").increment() }
            try await settle(name, due: dueText, next: next, task: task.taskID, firedAt: fireAt, error: nil)
            return created
        } catch {
            guard case .unavailable = error else {
                // The template or its context refuses the task: said on the schedule, not retried.
                TaskerMetric.scheduleFirings(name, "failed").increment()
                try await settle(name, due: dueText, next: next, task: nil, firedAt: nil, error: "the firing at \(firing) made no task: \(error.description)")
                return false
            }
            throw error
        }
    }

    /// Moves a fired schedule on, unless another node did first (its next_run_at is no longer `due`).
    private func settle(_ name: String, due: String, next: Double?, task: String?, firedAt: Double?, error: String?) async throws(EngineError) {
        _ = try await read { connection in
            try connection.query(
                """
                UPDATE schedules SET next_run_at = to_timestamp($3::float8),
                    last_run_at = coalesce(to_timestamp($5::float8), last_run_at), last_task_id = coalesce($4::uuid, last_task_id),
                    last_error = $6
                WHERE name = $1 AND extract(epoch FROM next_run_at) = $2::numeric
                """, [name, due, next.map { String($0) }, task, firedAt.map { String($0) }, error])
        }
    }

    private func isUnfinished(_ taskID: String) async throws(EngineError) -> Bool {
        let rows = try await read { connection in try connection.query("SELECT status FROM tasks WHERE task_id = $1::uuid", [taskID]) }
        guard let status = rows.first?.int("status").flatMap({ TaskStatus(rawValue: $0) }) else { return false }
        return !TaskStatusRule.isFinished(status)
    }

    /// A schedule's name: 1 to 128 of letters, digits and `.`, `_`, `:`, `-`, starting with a
    /// letter or digit, so that it reads the same in a URL, a command line and a task's key.
    static func checkScheduleName(_ name: String) throws(EngineError) {
        let allowed = name.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x2E || byte == 0x5F
                || byte == 0x3A || byte == 0x2D
        }
        guard !name.isEmpty, name.utf8.count <= InputLimits.scheduleNameBytes, allowed, name.first?.isLetter == true || name.first?.isNumber == true else {
            throw .invalidArgument(
                "schedule name \(InputCheck.quoted(name)) must be 1 to \(InputLimits.scheduleNameBytes) letters, digits, '.', '_', ':' or '-', starting with a letter or digit")
        }
    }

    /// A firing's time as its idempotency key and messages write it: UTC to the second.
    static func scheduleTime(_ seconds: Double) -> String {
        let format = ISO8601DateFormatter()
        format.formatOptions = [.withInternetDateTime]
        return format.string(from: Date(timeIntervalSince1970: seconds))
    }

    static func schedule(_ row: PostgresRow) throws(EngineError) -> Tasker_V1_Schedule {
        var schedule = Tasker_V1_Schedule()
        schedule.name = row["name"] ?? ""
        schedule.template = row["template"] ?? ""
        schedule.version = row["version"] ?? ""
        schedule.cron = row["cron"] ?? ""
        schedule.timezone = row["timezone"] ?? ""
        if let context = try Rows.object(row["context"]) { schedule.context = context }
        schedule.paused = row.bool("paused") ?? false
        schedule.overlap = Tasker_V1_ScheduleOverlap(rawValue: row.int("overlap") ?? 1) ?? .allow
        if let at = Rows.timestamp(row["next_run_at"]) { schedule.nextRunAt = at }
        if let at = Rows.timestamp(row["last_run_at"]) { schedule.lastRunAt = at }
        schedule.lastTaskID = row["last_task_id"] ?? ""
        schedule.lastError = row["last_error"] ?? ""
        if let at = Rows.timestamp(row["created_at"]) { schedule.createdAt = at }
        return schedule
    }
}
