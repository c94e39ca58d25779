import Foundation

/// A point in time as seconds since 1970: what dispatch shares with Postgres, Redis and workers
/// (deadlines, due retries, when a node or worker was last heard from).
public struct UnixInstant: InstantProtocol, Sendable {
    public var seconds: Double

    public init(seconds: Double) {
        self.seconds = seconds
    }

    public func advanced(by duration: Duration) -> UnixInstant {
        UnixInstant(seconds: seconds + duration.seconds)
    }

    public func duration(to other: UnixInstant) -> Duration {
        .nanoseconds(Int64(((other.seconds - seconds) * 1e9).rounded()))
    }

    public static func < (lhs: UnixInstant, rhs: UnixInstant) -> Bool { lhs.seconds < rhs.seconds }
}

extension Duration {
    /// The duration in seconds, fractions included.
    public var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}

/// The clock dispatch reads and waits on: the system's in a server, one a test moves by hand,
/// so that timeouts, silence and every periodic loop are tested without sleeping.
public protocol UnixClock: Clock, Sendable where Instant == UnixInstant, Duration == Swift.Duration {}

/// The system's time of day.
public struct SystemUnixClock: UnixClock {
    public init() {}

    public var now: UnixInstant { UnixInstant(seconds: Date().timeIntervalSince1970) }

    public var minimumResolution: Duration { .microseconds(1) }

    public func sleep(until deadline: UnixInstant, tolerance: Duration?) async throws {
        try await Task.sleep(for: max(now.duration(to: deadline), .zero), tolerance: tolerance)
    }
}
