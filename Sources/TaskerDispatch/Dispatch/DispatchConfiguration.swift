/// Timings of dispatch; the defaults suit production, tests shorten them.
public struct DispatchConfiguration: Sendable {
    /// How often workers are asked to send a heartbeat; one silent for 3 of these is lost.
    public var heartbeatInterval: Double = 5
    /// How often the sweeper looks for lost work (and this node says it is alive).
    public var sweepInterval: Double = 5
    /// A node not seen for this long has lost the steps it was running.
    public var nodeTimeout: Double = 30
    /// A step ENQUEUED this long that the queue does not hold is given to it again.
    public var queueGrace: Double = 10
    /// How often due retries are taken off the queue's sorted set.
    public var retryPollInterval: Double = 0.1
    /// Deliveries unacknowledged this long (their node died) are dropped from the streams.
    public var abandonedDeliveryAge: Double = 60

    public init() {}
}
