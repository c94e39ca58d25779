import Foundation
import NIOConcurrencyHelpers

/// The messages any node publishes on one pub/sub channel (the signals of `StepQueue.publish`,
/// or the step updates' channel), delivered to `onMessage` on a
/// thread of the subscription's own. Pub/sub keeps nothing: a message sent while this node is
/// not subscribed (Redis restarting, say) is missed, so what travels here only ever hurries
/// along what the sweeper, or the stored history, would do anyway.
public final class ChannelSubscription: Sendable {
    private let lane: RedisLane
    private let stopped = NIOLockedValueBox(false)
    private let subscribed = NIOLockedValueBox(false)

    public init(url: RedisURL, channel: String, onMessage: @escaping @Sendable (String) -> Void) {
        lane = RedisLane(url: url, timeoutSeconds: 0.5)
        let stopped = self.stopped
        let everSubscribed = self.subscribed
        Task { [lane] in
            _ = try? await lane.run { connection in
                var subscribed = false
                while !stopped.withLockedValue({ $0 }) {
                    do {
                        if !subscribed || !connection.isConnected {
                            try connection.command(["SUBSCRIBE", channel])
                            subscribed = true
                            everSubscribed.withLockedValue { $0 = true }
                        }
                        guard let push = try connection.nextPush() else { continue }
                        let parts = push.array
                        if parts.count == 3, parts[0].string == "message", let message = parts[2].string {
                            onMessage(message)
                        }
                    } catch {
                        subscribed = false
                        usleep(200_000)
                    }
                }
            }
        }
    }

    /// Returns once Redis has confirmed the subscription (messages published from then on
    /// arrive), or after `seconds` when it has not (Redis is down: the subscription goes on
    /// trying). Short by default: a node whose Redis is down starts serving what Postgres alone
    /// can do, and a message missed meanwhile only means the sweeper does its work.
    public func waitUntilSubscribed(seconds: Double = 1) async {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while !subscribed.withLockedValue({ $0 }), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Stops listening; returns once the subscription's thread has.
    public func cancel() async {
        stopped.withLockedValue { $0 = true }
        await lane.shutdown()
    }
}
