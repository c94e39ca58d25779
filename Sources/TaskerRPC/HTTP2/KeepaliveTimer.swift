import NIOCore

/// HTTP/2 PING keepalive: after `interval` without input a PING goes out; no answer within
/// `timeout` means the peer is gone and the connection is closed.
final class KeepaliveTimer {
    enum Action { case nothing, sendPing, idleTimeout }

    let interval: TimeAmount
    let timeout: TimeAmount
    private var task: Scheduled<Void>?
    private var sawInput = false
    private var pingSentAt: NIODeadline?

    init(interval: TimeAmount, timeout: TimeAmount) {
        self.interval = interval
        self.timeout = timeout
    }

    func start(on loop: any EventLoop, _ fire: @escaping () -> Void) {
        let tick = min(interval, timeout)
        task = loop.assumeIsolated().scheduleTask(in: tick) { [weak self] in
            guard let self, self.task != nil else { return }
            fire()
            self.start(on: loop, fire)
        }
    }

    func stop() {
        task?.cancel()
        task = nil
    }

    func sawActivity() {
        sawInput = true
    }

    func pingAcknowledged() {
        pingSentAt = nil
    }

    private var idleSince = NIODeadline.now()

    func fire() -> Action {
        let now = NIODeadline.now()
        if sawInput {
            sawInput = false
            idleSince = now
            pingSentAt = nil
            return .nothing
        }
        if let sent = pingSentAt {
            return now - sent >= timeout ? .idleTimeout : .nothing
        }
        if now - idleSince >= interval {
            pingSentAt = now
            return .sendPing
        }
        return .nothing
    }
}
