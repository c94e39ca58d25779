import CoreMetrics

/// Every metric Tasker reports through swift-metrics, by the layer that reports it. Which
/// backend they reach (Prometheus, for `tasker serve`) is the executable's choice; until one is
/// bootstrapped they cost a no-op.
public enum TaskerMetric {
    // MARK: Engine

    public static let tasksSubmitted = MetricFamily.counter("tasker_tasks_submitted_total", labels: ["template"])
    /// status: complete, error, cancelled, resolved_manually.
    public static let tasksFinished = MetricFamily.counter("tasker_tasks_finished_total", labels: ["template", "status"])
    /// outcome: success, retryable_failure, permanent_failure, lost, timed_out.
    public static let stepAttempts = MetricFamily.counter("tasker_step_attempts_total", labels: ["handler", "outcome"])
    /// From ENQUEUED to IN_PROGRESS.
    public static let stepQueueWait = MetricFamily.timer("tasker_step_queue_wait_seconds", labels: ["handler"])
    /// From IN_PROGRESS to the worker's result.
    public static let stepRun = MetricFamily.timer("tasker_step_run_seconds", labels: ["handler"])
    /// From submission to the task's end.
    public static let taskDuration = MetricFamily.timer("tasker_task_duration_seconds", labels: ["template"])
    /// outcome: made (a task), skipped (overlap SKIP), failed (the template refused the task).
    public static let scheduleFirings = MetricFamily.counter("tasker_schedule_firings_total", labels: ["schedule", "outcome"])
    public static let tasksPruned = MetricFamily.counter("tasker_tasks_pruned_total")
    /// kind: what the sweeper put right (lost_node_attempts, timed_out_attempts, orphaned_attempts,
    /// due_retries, lost_queue_entries).
    public static let sweeperRepairs = MetricFamily.counter("tasker_sweeper_repairs_total", labels: ["kind"])

    // MARK: Dispatch

    /// This node's workers by handler (a worker of three handlers counts in each).
    public static let workersConnected = MetricFamily.gauge("tasker_workers_connected", labels: ["handler"])
    /// state: busy, free: the slots of this node's workers of each handler.
    public static let workerSlots = MetricFamily.gauge("tasker_worker_slots", labels: ["handler", "state"])
    /// Steps ENQUEUED for each handler, in the whole cluster (every node reports the same).
    public static let queueReady = MetricFamily.gauge("tasker_queue_ready", labels: ["handler"])
    /// Results for an attempt the worker does not hold (stale, duplicate, unknown): dropped.
    public static let fencedResults = MetricFamily.counter("tasker_fenced_results_total")

    // MARK: RPC

    public static let rpcRequests = MetricFamily.counter("tasker_rpc_requests_total", labels: ["method", "code"])
    public static let rpcDuration = MetricFamily.timer("tasker_rpc_duration_seconds", labels: ["method"])
    public static let stepUpdateWatchers = MetricFamily.meter("tasker_step_update_watchers")

    // MARK: Stores

    /// How long a call waited for a Postgres connection of the pool.
    public static let postgresPoolWait = MetricFamily.timer("tasker_postgres_pool_wait_seconds")
    public static let postgresErrors = MetricFamily.counter("tasker_postgres_errors_total")
    public static let redisErrors = MetricFamily.counter("tasker_redis_errors_total")
}
