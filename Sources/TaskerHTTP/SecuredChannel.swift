import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import TaskerRPC

/// An HTTP/1.1 connection behind the handlers of a `ServerConnectionSecurity` (TLS, from
/// TaskerTLS): the port is secured the way the RPC port is, certificate reloads included.
struct SecuredChannel<Base: ServerChildChannel>: ServerChildChannel {
    typealias Value = Base.Value
    let base: Base
    let security: any ServerConnectionSecurity

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            try security.secure(channel)
        }.flatMap {
            base.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}
