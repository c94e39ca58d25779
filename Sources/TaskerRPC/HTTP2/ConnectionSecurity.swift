import NIOCore

/// What secures a server's connections before HTTP/2 begins (TLS, in TaskerTLS): the handlers
/// it puts in front of the transport, which sees only bytes either way.
public protocol ServerConnectionSecurity: Sendable {
    /// Adds the handlers to a new connection's pipeline, on its event loop.
    func secure(_ channel: any Channel) throws
}

/// What secures a client's connection before HTTP/2 begins.
public protocol ClientConnectionSecurity: Sendable {
    /// Adds the handlers to a new connection's pipeline, on its event loop; the future ends
    /// when the connection is secured, or fails saying why not.
    func secure(_ channel: any Channel, host: String, authority: String) throws -> EventLoopFuture<Void>

    /// What an error of the connection means, when it comes from securing it.
    func describe(_ error: any Error, server: String) -> String?
}
