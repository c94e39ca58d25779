import Metrics
import Prometheus

/// The metrics backend of `tasker serve`: every swift-metrics metric of every layer, kept in a
/// Prometheus registry that `/metrics` writes out.
struct PrometheusMetrics: Sendable {
    let registry: PrometheusCollectorRegistry

    /// Histogram buckets from a millisecond to ten minutes: an RPC, a queue wait, a step, a task.
    static let durationBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5),
        .seconds(10), .seconds(30), .seconds(60), .seconds(120), .seconds(300), .seconds(600),
    ]

    /// Makes the registry the process's metrics backend; once per process.
    static func bootstrap() -> PrometheusMetrics {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = durationBuckets
        MetricsSystem.bootstrap(factory)
        return PrometheusMetrics(registry: registry)
    }

    /// The text exposition format, as `/metrics` serves it.
    var exposition: @Sendable () -> [UInt8] {
        let registry = self.registry
        return { registry.emitToBuffer() }
    }
}
