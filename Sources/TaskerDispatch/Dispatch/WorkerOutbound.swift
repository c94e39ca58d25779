import TaskerProto

/// What dispatch sends down a worker's stream.
public enum WorkerOutbound: Sendable {
    case message(Tasker_V1_ServerMessage)
    /// The stream is to end with UNAVAILABLE and this message (the worker went silent).
    case end(String)
}
