import Foundation
import NIOConcurrencyHelpers
import SwiftProtobuf
import TaskerProto
import TaskerStore

/// Templates and tasks in Postgres, moved through their state machines. Every change is one
/// transaction of conditional updates, so a duplicate or stale request changes nothing.
public final class TaskEngine: Sendable {
    let pool: PostgresPool
    /// Registered templates never change: once read, a (name, version) is kept, and so is the
    /// newest of each name, which SubmitTask checks is still the newest as it writes.
    private let templates = NIOLockedValueBox(TemplateCache())
    private let observers = StepChangeObservers()
    /// What GetTask's waiting reasons are read from (ClusterView).
    let cluster = NIOLockedValueBox<ClusterSnapshot?>(nil)
    /// Where GetTask learns which queued steps wait for a rate limit.
    let rateWaits = NIOLockedValueBox<(any RateWaitSource)?>(nil)
    /// What admits a step with limits that a result made ready, so that it starts in that
    /// result's transaction; without one, such steps go through the queue.
    let limitedStarts = NIOLockedValueBox<(any LimitedStartGate)?>(nil)

    /// Whether a schedule's cron may have a sixth field of seconds in front: for tests, which
    /// drive schedules in seconds rather than minutes.
    public let cronWithSeconds: Bool

    public init(pool: PostgresPool, cronWithSeconds: Bool = false) {
        self.pool = pool
        self.cronWithSeconds = cronWithSeconds
    }

    /// Asks `source` from now on why queued steps with rate limits wait.
    public func explainRateWaits(with source: any RateWaitSource) {
        rateWaits.withLockedValue { $0 = source }
    }

    /// Asks `gate` from now on whether a step with limits that a result made ready may start in
    /// that result's transaction.
    public func startLimitedSteps(through gate: any LimitedStartGate) {
        limitedStarts.withLockedValue { $0 = gate }
    }

    /// Tells `observer` of every transition from now on, once it has committed.
    public func observe(_ observer: any StepChangeObserver) {
        observers.add(observer)
    }

    /// Runs `body` in a transaction, reporting store failures as engine errors; the
    /// transitions it records are told to the observers after the commit.
    func transaction<Result: Sendable>(
        flushCommit: Bool = true,
        _ body: @escaping @Sendable (PostgresConnection, ChangeSet) throws -> Result
    ) async throws(EngineError) -> Result {
        try await transaction(flushCommit: flushCommit, turning: { connection, changes in .commit(try body(connection, changes)) })
    }

    /// As `transaction`, for a body that may wait in its middle for something other than the
    /// database (`PostgresPool.TransactionTurn`).
    func transaction<Result: Sendable>(
        flushCommit: Bool = true,
        turning body: @escaping @Sendable (PostgresConnection, ChangeSet) throws -> PostgresPool.TransactionTurn<Result>
    ) async throws(EngineError) -> Result {
        let changes = ChangeSet()
        let result: Result
        do {
            result = try await pool.transaction(flushCommit: flushCommit, genericPlans: true) { connection in try body(connection, changes) }
        } catch {
            throw EngineError(error)
        }
        for measurement in changes.measurements { measurement.report() }
        await observers.tell(changes.changes, delayed: changes.delayed)
        return result
    }

    /// Tells the observers of transitions committed outside `transaction` (a new task's).
    func committed(_ changes: [StepChange], delayed: [DelayedStep] = []) async {
        await observers.tell(changes, delayed: delayed)
    }

    func read<Result: Sendable>(
        _ body: @escaping @Sendable (PostgresConnection) throws -> Result
    ) async throws(EngineError) -> Result {
        do {
            return try await pool.withConnection(body)
        } catch {
            throw EngineError(error)
        }
    }

    // MARK: Templates

    /// Registers a template; the same content again is not an error (created = false).
    public func registerTemplate(_ template: Tasker_V1_TaskTemplate) async throws(EngineError) -> (template: Tasker_V1_TaskTemplate, created: Bool) {
        let validated = try TemplateValidator.validate(template)
        let definition = Data(validated.definition)
        let name = validated.template.name
        let version = validated.template.version
        let (created, stored, highest) = try await transaction { connection, _ -> (Bool, StoredTemplate, Bool) in
            // `highest`: no version of the name is above this one (the new row is not in the
            // snapshot its RETURNING reads).
            let inserted = try connection.query(
                """
                INSERT INTO task_templates AS new (name, version, definition, fingerprint)
                VALUES ($1, $2, decode($3, 'base64'), encode(sha256(decode($3, 'base64')), 'hex'))
                ON CONFLICT (name, version) DO NOTHING
                RETURNING registration, encode(version_order, 'hex') AS version_order,
                    NOT EXISTS (SELECT 1 FROM task_templates t WHERE t.name = $1
                        AND (t.version_order, t.registration) > (new.version_order, new.registration)) AS highest
                """, [name, version, definition.base64EncodedString()])
            if let row = inserted.first, let registration = row.int("registration") {
                let stored = StoredTemplate(validated: validated, registration: registration, order: row["version_order"] ?? "")
                return (true, stored, row.bool("highest") == true)
            }
            let same = try connection.query(
                """
                SELECT fingerprint = encode(sha256(decode($3, 'base64')), 'hex') AS same, registration,
                    encode(version_order, 'hex') AS version_order
                FROM task_templates WHERE name = $1 AND version = $2
                """, [name, version, definition.base64EncodedString()])
            guard let row = same.first, row.bool("same") == true, let registration = row.int("registration") else {
                throw EngineError.alreadyExists("template \(name) version \(version) is already registered with other content; register it under a new version")
            }
            return (false, StoredTemplate(validated: validated, registration: registration, order: row["version_order"] ?? ""), false)
        }
        templates.withLockedValue { $0.keep(stored, newest: highest) }
        return (validated.template, created)
    }

    /// Templates in order of name and registration, a page at a time: up to `page_size`, and
    /// about InputLimits.pageBytes at most. The page token is the registration number and name
    /// of the page's last template.
    public func listTemplates(_ request: Tasker_V1_ListTaskTemplatesRequest) async throws(EngineError) -> Tasker_V1_ListTaskTemplatesResponse {
        guard request.pageSize >= 0 else {
            throw .invalidArgument("page_size is \(request.pageSize); it must be 0 (as many as fit) or more")
        }
        var after: (name: String, registration: Int)?
        if !request.pageToken.isEmpty {
            let parts = request.pageToken.split(separator: "/", maxSplits: 1)
            guard parts.count == 2, let registration = Int(parts[0]), let name = String(parts[1]).removingPercentEncoding else {
                throw .invalidArgument("page_token \(InputCheck.quoted(request.pageToken)) is not one this server gave out")
            }
            after = (name, registration)
        }
        let limit = request.pageSize == 0 ? Int(Int32.max) : Int(request.pageSize)
        let cursor = after
        let page = try await read { connection in
            try ListingPage.read(limit: limit) { last, count in
                let from = last.map { (name: $0["name"] ?? "", registration: $0["registration"] ?? "0") }
                    ?? cursor.map { (name: $0.name, registration: String($0.registration)) }
                return try connection.query(
                    """
                    SELECT encode(definition, 'base64') AS definition, name, registration FROM task_templates
                    WHERE $1::text IS NULL OR (name, registration) > ($1::text, $2::bigint)
                    ORDER BY name, registration LIMIT $3
                    """, [from?.name, from?.registration, String(count)])
            }
        }
        var response = Tasker_V1_ListTaskTemplatesResponse()
        for row in page.rows {
            guard let encoded = row["definition"], let data = Data(base64Encoded: encoded, options: .ignoreUnknownCharacters) else {
                throw .internal("template \(row["name"] ?? "") has no readable definition")
            }
            do {
                response.templates.append(try Tasker_V1_TaskTemplate(serializedBytes: data))
            } catch {
                throw .internal("template \(row["name"] ?? "")'s stored definition does not decode: \(error)")
            }
        }
        if page.more, let last = page.rows.last {
            let name = last["name"] ?? ""
            response.nextPageToken = "\(last["registration"] ?? "0")/\(name.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")"
        }
        return response
    }

    /// The template of that name and version; an empty version is the newest, the highest in
    /// the order of versions (0008_version_order.sql).
    /// `forgettingNewest` drops what this node believes is the newest, once SubmitTask found
    /// that another node registered a newer one.
    func template(name: String, version: String, forgettingNewest: Bool = false) async throws(EngineError) -> StoredTemplate {
        if let known = templates.withLockedValue({ cache -> StoredTemplate? in
            if forgettingNewest { cache.forgetNewest(of: name) }
            return version.isEmpty ? cache.newest(of: name) : cache.template(name: name, version: version)
        }) {
            return known
        }
        let rows = try await read { connection in
            try connection.query(
                """
                SELECT encode(definition, 'base64') AS definition, registration, encode(version_order, 'hex') AS version_order
                FROM task_templates
                WHERE name = $1 AND ($2 = '' OR version = $2) ORDER BY version_order DESC, registration DESC LIMIT 1
                """, [name, version])
        }
        guard let row = rows.first, let encoded = row["definition"], let registration = row.int("registration"),
              let bytes = Data(base64Encoded: encoded, options: .ignoreUnknownCharacters),
              let stored = try? Tasker_V1_TaskTemplate(serializedBytes: bytes)
        else {
            throw .notFound(version.isEmpty ? "no template named '\(name)'" : "no template '\(name)' version '\(version)'")
        }
        let template = StoredTemplate(
            validated: try TemplateValidator.validate(stored), registration: registration, order: row["version_order"] ?? "")
        templates.withLockedValue { $0.keep(template, newest: version.isEmpty) }
        return template
    }

    // MARK: Reading tasks

    /// Parses a task id; INVALID_ARGUMENT when it is not a UUID.
    public static func taskID(_ text: String) throws(EngineError) -> String {
        guard let id = UUID(uuidString: text) else {
            throw .invalidArgument("task_id \(InputCheck.quoted(text)) is not a UUID")
        }
        return id.uuidString.lowercased()
    }

    /// A task with its steps; with `explainingWaits`, each step that cannot move says why, as
    /// the nodes seen in that many seconds tell it.
    public func getTask(_ id: String, explainingWaits liveWithin: Double? = nil) async throws(EngineError) -> Tasker_V1_Task {
        let taskID = try Self.taskID(id)
        guard var task = try await read({ connection in try Self.loadTask(taskID, connection) }) else {
            throw .notFound("no task \(taskID)")
        }
        if let liveWithin { try await explainWaits(&task, liveWithin: liveWithin) }
        return task
    }

    /// A task with its steps and annotations, read on `connection`.
    static func loadTask(_ taskID: String, _ connection: PostgresConnection) throws -> Tasker_V1_Task? {
        var task: Tasker_V1_Task
        var steps: PostgresRows
        var reads = 0
        while true {
            guard let row = try connection.query("SELECT \(Rows.taskColumns), last_sequence FROM tasks WHERE task_id = $1", [taskID]).first else {
                return nil
            }
            task = try Rows.task(row)
            // The steps and the task's last sequence in one statement, so one snapshot: a watch
            // that draws this read and streams after that sequence sees every later transition, once.
            steps = try connection.query(
                """
                SELECT \(Rows.stepColumns), t.last_sequence FROM steps s JOIN tasks t ON t.task_id = s.task_id
                WHERE s.task_id = $1 ORDER BY s.position
                """, [taskID])
            task.lastSequence = UInt64(steps.first?.int("last_sequence") ?? 0)
            reads += 1
            // A transition committed between the two reads leaves the task's own status older
            // than its steps and its sequence, and a watch would never be sent it: read again.
            if row.int("last_sequence") == steps.first?.int("last_sequence") || reads == 10 { break }
        }
        task.steps = try steps.map { row throws(EngineError) in try Rows.step(row) }
        task.annotations = try connection.query(
            """
            SELECT type, step_name, annotation::text AS annotation, extract(epoch FROM created_at)::text AS created_at
            FROM annotations WHERE task_id = $1 ORDER BY annotation_id
            """, [taskID]
        ).map { row in
            var annotation = Tasker_V1_Annotation()
            annotation.type = row["type"] ?? ""
            annotation.stepName = row["step_name"] ?? ""
            if let object = try Rows.object(row["annotation"]) { annotation.annotation = object }
            if let at = Rows.timestamp(row["created_at"]) { annotation.createdAt = at }
            return annotation
        }
        return task
    }
}
