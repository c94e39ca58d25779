import CoreMetrics
import NIOConcurrencyHelpers

/// One metric name with its label names, and one swift-metrics handle per set of label values,
/// made at its first use and kept: a hot path pays a locked lookup, not the backend's
/// registration. Label values are kept low in number by their callers (a template, a
/// handler, a method: never a task or step id).
public final class MetricFamily<Metric: Sendable>: Sendable {
    public let name: String
    public let labels: [String]
    private let make: @Sendable (String, [(String, String)]) -> Metric
    private let made = NIOLockedValueBox<[[String]: Metric]>([:])

    init(_ name: String, labels: [String], make: @escaping @Sendable (String, [(String, String)]) -> Metric) {
        self.name = name
        self.labels = labels
        self.make = make
    }

    /// The handle for these label values, in the order of `labels`.
    public func callAsFunction(_ values: String...) -> Metric {
        handle(values)
    }

    public func handle(_ values: [String]) -> Metric {
        if let known = made.withLockedValue({ $0[values] }) { return known }
        precondition(values.count == labels.count, "\(name) takes the labels \(labels)")
        let metric = make(name, Array(zip(labels, values)))
        return made.withLockedValue { made in
            if let raced = made[values] { return raced }
            made[values] = metric
            return metric
        }
    }
}

extension MetricFamily where Metric == Counter {
    public static func counter(_ name: String, labels: [String] = []) -> MetricFamily {
        MetricFamily(name, labels: labels) { Counter(label: $0, dimensions: $1) }
    }
}

extension MetricFamily where Metric == CoreMetrics.Timer {
    /// A histogram of durations, in seconds (the buckets are the backend's).
    public static func timer(_ name: String, labels: [String] = []) -> MetricFamily {
        MetricFamily(name, labels: labels) { CoreMetrics.Timer(label: $0, dimensions: $1, preferredDisplayUnit: .seconds) }
    }
}

extension MetricFamily where Metric == Gauge {
    /// A value that is set (a count of something now).
    public static func gauge(_ name: String, labels: [String] = []) -> MetricFamily {
        MetricFamily(name, labels: labels) { Gauge(label: $0, dimensions: $1) }
    }
}

extension MetricFamily where Metric == Meter {
    /// A value that goes up and down by steps.
    public static func meter(_ name: String, labels: [String] = []) -> MetricFamily {
        MetricFamily(name, labels: labels) { Meter(label: $0, dimensions: $1) }
    }
}

extension CoreMetrics.Timer {
    /// Records an elapsed `Duration` (of a `ContinuousClock`, say).
    public func record(_ elapsed: Duration) {
        let (seconds, attoseconds) = elapsed.components
        recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
