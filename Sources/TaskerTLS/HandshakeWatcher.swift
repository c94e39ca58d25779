import NIOCore
import NIOTLS

/// Learns how a TLS handshake ended, then leaves the pipeline: a client's connection counts as
/// made only once it is secured (and a failure reaches the caller as the reason, not as a lost
/// connection); a server closes a connection whose handshake does not end in time.
final class HandshakeWatcher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let done: EventLoopPromise<Void>
    private let server: String

    init(done: EventLoopPromise<Void>, server: String) {
        self.done = done
        self.server = server
    }

    /// For a server's connection: closed unless its handshake ends within `timeout`.
    static func limiting(_ channel: any Channel, to timeout: TimeAmount) -> HandshakeWatcher {
        let done = channel.eventLoop.makePromise(of: Void.self)
        let deadline = channel.eventLoop.scheduleTask(in: timeout) {
            done.fail(TLSSetupError("the TLS handshake did not end within \(timeout)"))
            channel.close(promise: nil)
        }
        done.futureResult.whenComplete { _ in deadline.cancel() }
        return HandshakeWatcher(done: done, server: "the client")
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted(let negotiated)? = event as? TLSUserEvent {
            // A server without ALPN is taken at its word; one that chose another protocol
            // would not understand HTTP/2.
            if let negotiated, negotiated != "h2" {
                done.fail(TLSSetupError("\(server) chose \(negotiated) in the TLS handshake, not h2: it is not a gRPC server"))
                context.close(promise: nil)
            } else {
                done.succeed()
                context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        done.fail(error)
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        done.fail(TLSSetupError("\(server) closed the connection during the TLS handshake"))
        context.fireChannelInactive()
    }
}
