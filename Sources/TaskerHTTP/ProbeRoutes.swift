import Hummingbird

/// `/live`, `/ready` and `/metrics`: what an orchestrator and Prometheus ask.
public struct ProbeRoutes: HTTPRoutes {
    /// What `/ready` reports: each check by name, with why it fails (nil: it passes).
    public typealias Readiness = @Sendable () async -> [(check: String, problem: String?)]

    let readiness: Readiness
    /// The Prometheus text exposition of every metric; nil leaves `/metrics` out.
    let metrics: (@Sendable () -> [UInt8])?

    public init(readiness: @escaping Readiness, metrics: (@Sendable () -> [UInt8])?) {
        self.readiness = readiness
        self.metrics = metrics
    }

    public func add(to router: Router<BasicRequestContext>) {
        router.get("/live") { _, _ in
            Response.json(.ok, ["live": true])
        }
        router.get("/ready") { _, _ in
            let checks = await readiness()
            let down = checks.compactMap { check in check.problem.map { (check.check, $0) } }
            var body: [String: Any] = ["ready": down.isEmpty, "checks": Dictionary(uniqueKeysWithValues: checks.map { ($0.check, $0.problem ?? "ok") })]
            if !down.isEmpty { body["down"] = down.map(\.0) }
            return Response.json(down.isEmpty ? .ok : .serviceUnavailable, body)
        }
        if let metrics {
            router.get("/metrics") { _, _ in
                Response(
                    status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                    body: .init(byteBuffer: ByteBuffer(bytes: metrics())))
            }
        }
    }
}
