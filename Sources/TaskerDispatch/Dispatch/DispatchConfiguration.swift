/// Timings of dispatch; the defaults suit production, tests shorten them.
public struct DispatchConfiguration: Sendable {
    /// How often workers are asked to send a heartbeat.
    public var heartbeatInterval: Double = 1
    /// A worker silent for this many heartbeat intervals is lost (its stream is ended and its
    /// attempts run elsewhere): with the defaults, within 3.5 s of its last heartbeat.
    public var missedHeartbeats = 3
    /// How often the sweeper looks for lost work.
    public var sweepInterval: Double = 5
    /// How often this node says it is alive, and looks for nodes that have stopped saying so.
    public var nodeHeartbeatInterval: Double = 2
    /// A node not seen for this long has lost the steps it was running: with the defaults,
    /// another node runs them within 9 s of the node's last heartbeat, while a node whose
    /// heartbeats are merely slow has three chances to be heard.
    /// Keep it well over twice `nodeHeartbeatInterval`.
    public var nodeTimeout: Double = 7
    /// A step ENQUEUED this long that the queue does not hold is given to it again.
    public var queueGrace: Double = 10
    /// How often due retries are taken off the queue's sorted set.
    public var retryPollInterval: Double = 0.1
    /// Deliveries unacknowledged this long (their node died) are dropped from the streams.
    public var abandonedDeliveryAge: Double = 60
    /// A ready step ranks one priority higher for each this long it has waited (DESIGN §8: 60 s).
    public var agingInterval: Duration = .seconds(60)

    public init() {}
}
