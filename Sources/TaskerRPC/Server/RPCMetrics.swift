import CoreMetrics
import NIOConcurrencyHelpers
import TaskerMetrics

/// `tasker_rpc_requests_total{method,code}` and `tasker_rpc_duration_seconds{method}`. Only
/// registered methods are named (a path no service has counts as "unknown"), so a caller cannot
/// grow the labels; each method's handles are looked up once.
enum RPCMetrics {
    private final class Method: Sendable {
        let label: String
        let duration: CoreMetrics.Timer
        let byCode: NIOLockedValueBox<[Counter?]>

        init(label: String) {
            self.label = label
            duration = TaskerMetric.rpcDuration(label)
            byCode = NIOLockedValueBox(Array(repeating: nil, count: StatusCode.allCases.count))
        }

        func counter(_ code: StatusCode) -> Counter {
            if let known = byCode.withLockedValue({ $0[code.rawValue] }) { return known }
            let made = TaskerMetric.rpcRequests(label, code.description)
            byCode.withLockedValue { $0[code.rawValue] = made }
            return made
        }
    }

    private static let methods = NIOLockedValueBox<[String: Method]>([:])

    /// A call to `method` (its path; nil for one no service has) ended with `code`.
    static func served(method path: String?, code: StatusCode, after elapsed: Duration?) {
        let method = self.method(path)
        method.counter(code).increment()
        if let elapsed { method.duration.record(elapsed) }
    }

    private static func method(_ path: String?) -> Method {
        let key = path ?? ""
        if let known = methods.withLockedValue({ $0[key] }) { return known }
        let made = Method(label: path.map { String($0.drop { $0 == "/" }) } ?? "unknown")
        return methods.withLockedValue { methods in
            if let raced = methods[key] { return raced }
            methods[key] = made
            return made
        }
    }
}
