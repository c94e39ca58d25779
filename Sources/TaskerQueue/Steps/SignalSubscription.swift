import Foundation
import NIOConcurrencyHelpers

/// Signals published by any node (`StepQueue.publish`), delivered to `onSignal` on a thread of
/// the subscription's own. Pub/sub keeps nothing: a signal sent while this node is not
/// subscribed (Redis restarting, say) is missed, so signals only ever hurry along what the
/// sweeper would do anyway.
public final class SignalSubscription: Sendable {
    private let lane: RedisLane
    private let stopped = NIOLockedValueBox(false)

    public init(url: RedisURL, onSignal: @escaping @Sendable (String) -> Void) {
        lane = RedisLane(url: url, timeoutSeconds: 0.5)
        let stopped = self.stopped
        Task { [lane] in
            _ = try? await lane.run { connection in
                var subscribed = false
                while !stopped.withLockedValue({ $0 }) {
                    do {
                        if !subscribed || !connection.isConnected {
                            try connection.command(["SUBSCRIBE", StepQueue.signalsChannel])
                            subscribed = true
                        }
                        guard let push = try connection.nextPush() else { continue }
                        let parts = push.array
                        if parts.count == 3, parts[0].string == "message", let signal = parts[2].string {
                            onSignal(signal)
                        }
                    } catch {
                        subscribed = false
                        usleep(200_000)
                    }
                }
            }
        }
    }

    /// Stops listening; returns once the subscription's thread has.
    public func cancel() async {
        stopped.withLockedValue { $0 = true }
        await lane.shutdown()
    }
}
