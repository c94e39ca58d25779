import Foundation
import TaskerProto

/// A step template's rate limit, parsed once per template.
struct RateLimitTemplate: Sendable {
    /// nil: one key for the whole step of the template.
    let key: LimitKey?
    let limit: Int
    let periodMilliseconds: Int
    let units: Int

    init(_ limit: Tasker_V1_RateLimit) throws(EngineError) {
        key = limit.key.isEmpty ? nil : try LimitKey(parsing: limit.key)
        self.limit = Int(limit.limit)
        periodMilliseconds = Int(limit.periodSeconds) * 1000
        units = limit.units == 0 ? 1 : Int(limit.units)
    }
}

/// A step's rate limits as its task made them, in the form the steps table keeps and the
/// queue's admission script reads: JSON `[[key, limit, period in ms, units], …]`.
public struct StepRateLimits: Sendable, Hashable {
    public let encoded: String

    public init(encoded: String) {
        self.encoded = encoded
    }

    /// From the stored column; nil without limits.
    init?(stored: String?) {
        guard let stored, !stored.isEmpty else { return nil }
        encoded = stored
    }

    /// The limits of one step of `template` for a task with `context`; nil when it has none.
    /// A key the context cannot fill is INVALID_ARGUMENT naming the step.
    static func rendered(
        _ limits: [RateLimitTemplate], step: String, template: String, context: JSONValue
    ) throws(EngineError) -> StepRateLimits? {
        guard !limits.isEmpty else { return nil }
        var rows: [[Any]] = []
        for limit in limits {
            var key = "\(template)/\(step)"
            if let parts = limit.key {
                do {
                    key = try parts.rendered(for: context, kind: "rate limit key")
                } catch {
                    throw .invalidArgument("step \(InputCheck.quoted(step)): \(error.description)")
                }
            }
            try InputCheck.text(key, "step \(InputCheck.quoted(step))'s rate limit key", limit: InputLimits.labelBytes)
            rows.append([key, limit.limit, limit.periodMilliseconds, limit.units])
        }
        guard let data = try? JSONSerialization.data(withJSONObject: rows) else {
            throw .internal("the rate limits of step \(InputCheck.quoted(step)) cannot be written down")
        }
        return StepRateLimits(encoded: String(decoding: data, as: UTF8.self))
    }

    /// The limits' keys, in the template's order.
    var keys: [String] {
        guard let rows = try? JSONSerialization.jsonObject(with: Data(encoded.utf8)) as? [[Any]] else { return [] }
        return rows.compactMap { $0.first as? String }
    }
}
