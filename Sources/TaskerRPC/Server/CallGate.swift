/// Decides, before a call's handler runs, whether the call may go ahead: the transport's one
/// hook for authentication and authorization (tokens and roles live above it).
public protocol CallGate: Sendable {
    /// Who is calling, kept as the call's `ServerContext.caller`; throws the `RPCError` that
    /// refuses the call (UNAUTHENTICATED, PERMISSION_DENIED), which is its status.
    func admit(_ context: ServerContext) async throws -> (any Sendable)?
}
