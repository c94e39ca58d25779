import TaskerProto

/// The delay before a step's next attempt: max(requested, min(max, base · 2^(attempt − 1)))
/// varied by ±jitter (DESIGN §3). `attempt` is the attempt that just failed, from 1.
public enum Backoff {
    public static func delay(
        attempt: Int32, policy: Tasker_V1_BackoffPolicy, requestedSeconds: Int32,
        random: Double = Double.random(in: 0..<1)
    ) -> Double {
        let exponent = Double(max(attempt - 1, 0))
        let grown = min(policy.maxSeconds, policy.baseSeconds * Double.pow2(exponent))
        let jittered = grown * (1 + policy.jitter * (2 * random - 1))
        return max(Double(max(requestedSeconds, 0)), min(jittered, policy.maxSeconds))
    }
}

extension Double {
    /// 2^n without Foundation; large n saturates instead of overflowing.
    fileprivate static func pow2(_ n: Double) -> Double {
        n >= 1023 ? .greatestFiniteMagnitude : Double(sign: .plus, exponent: Int(n), significand: 1)
    }
}
