/// How large each part of a request may be. Every limit is checked before anything reaches
/// Postgres, so that no value is cut, refused by an index or lost there, and so that every
/// response fits a stock client's 4 MiB message limit with room to spare. Sizes are UTF-8
/// bytes; JSON sizes are of the value as stored.
public enum InputLimits {
    /// Template names and versions, step names, handlers, tags, annotation types.
    public static let nameBytes = 128
    /// initiator, source_system, dependent_system, idempotency_key, a worker's name.
    public static let labelBytes = 256
    /// Reasons, a template's description, and a failure's message as stored.
    public static let reasonBytes = 4096
    public static let stepDescriptionBytes = 1024
    public static let schemaBytes = 64 * 1024
    public static let stepsPerTemplate = 200
    /// depends_on entries over all the steps of a template.
    public static let dependenciesPerTemplate = 1000
    public static let tagsPerTask = 32
    public static let contextBytes = 256 * 1024
    /// A step's results, from a worker or ResolveStep.
    public static let resultsBytes = 256 * 1024
    public static let annotationsPerResult = 16
    public static let annotationBytes = 16 * 1024
    public static let annotationsPerTask = 32
    /// A task's context and every step's results together. With its annotations and each
    /// step's last error this keeps a whole task, as GetTask returns it, under 3 MiB.
    public static let taskBytes = 1536 * 1024
    /// Objects and lists inside a Struct (context, results, annotations). Well inside
    /// protobuf's usual decoding limit of 100, so a worker can always decode the assignment
    /// that carries them.
    public static let structDepth = 32
    public static let retryLimit: Int32 = 1000
    /// Timeouts and backoff delays: 30 days.
    public static let seconds = 30 * 24 * 3600
    public static let pageSize = 500
    public static let defaultPageSize = 50
    /// A listing ends its page early once it holds this much, and says so with a page token.
    public static let pageBytes = 3 * 1024 * 1024
    /// Handlers one worker registers.
    public static let handlersPerWorker = 64
    public static let slotsPerWorker: Int32 = 10_000
    /// The most attempts of one concurrency key a template may let run at once.
    public static let concurrencyMaxRunning: Int32 = 100_000
    /// Rate limits of one step, and the bounds of each.
    public static let rateLimitsPerStep = 8
    public static let rateLimit: Int32 = 1_000_000
    public static let ratePeriodSeconds: Int32 = 86_400
    /// A schedule's name, and how many schedules ListSchedules returns.
    public static let scheduleNameBytes = 128
    public static let schedules = 10_000
    /// How far ahead a task's start_at may be.
    public static let startAheadSeconds = 366.0 * 86_400
}
