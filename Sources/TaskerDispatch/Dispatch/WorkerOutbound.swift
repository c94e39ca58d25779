import TaskerEngine

/// What dispatch sends down a worker's stream, in dispatch's terms: the Workers service makes
/// each into the wire's `ServerMessage`.
public enum WorkerOutbound: Sendable {
    /// The worker is registered under this id and should send a heartbeat this often.
    case registered(workerID: String, heartbeatInterval: Double)
    /// An attempt to run; `deadline` (Unix seconds) when its step has a timeout.
    case assignment(StartedStep, deadline: Double?)
    /// The worker is to stop running the attempt.
    case cancel(stepID: String, attempt: Int32, reason: String)
    /// The stream is to end with UNAVAILABLE and this message (the worker went silent).
    case end(String)
}
