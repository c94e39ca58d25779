import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import TaskerDev
import TaskerDispatch
import TaskerEngine
import TaskerServer
import TaskerStore
import TaskerWorker
import Testing

/// A node and a worker as swift-service-lifecycle Services: a group's graceful shutdown stops
/// them as `stop` and `shutdown` do.
@Suite struct LifecycleTests {
    @Test func aWorkerInAServiceGroupDrainsOnGracefulShutdown() async throws {
        let harness = try await DispatchHarness()
        try await harness.register(template("single", [step("long")]))
        let holding = NIOLockedValueBox(false)
        let worker = Worker(
            host: "127.0.0.1", port: harness.nodes[0].server.port,
            configuration: .init(name: "grouped", slots: 2, reconnectBackoff: (0.05, 0.5), drainTimeout: 5))
        worker.handle("long") { _ in
            holding.withLockedValue { $0 = true }
            try await Task.sleep(for: .milliseconds(600))
            return results(#"{"done": true}"#)
        }
        let group = ServiceGroup(services: [worker], logger: Logger(label: "test"))
        let running = Task { try await group.run() }
        try await eventually("registered") { worker.isConnected }
        let task = try await harness.submit("single")
        try await eventually("the step started") { holding.withLockedValue { $0 } }
        await group.triggerGracefulShutdown()
        try await running.value
        #expect(!worker.isConnected && worker.runningSteps == 0, "run() returned once drained")
        let done = try await harness.finished(task.taskID)
        let long = try #require(done.steps.first)
        #expect(done.status == .complete && long.attempts == 1, "the step it held finished there, once")
        #expect(long.results.fields["done"]?.boolValue == true)
        await harness.stop()
    }

    @Test func aNodeInAServiceGroupStopsItsPartsOnGracefulShutdown() async throws {
        let redis = try await blocking { try PrivateRedis() }
        let database = try await blocking { try PrivatePostgres.shared().createDatabase() }
        var settings = TaskerNode.Settings(databaseURL: database, redisURL: redis.url)
        settings.port = 0
        settings.http = .init(port: 0)
        settings.retention = 86_400
        settings.dispatch = DispatchHarness.fast
        let node = try await TaskerNode.assemble(settings)
        let port = node.server.port
        let group = ServiceGroup(services: [node], logger: Logger(label: "test"))
        let running = Task { try await group.run() }
        let worker = Worker(host: "127.0.0.1", port: port, configuration: .init(name: "w", reconnectBackoff: (0.05, 0.2)))
        worker.handle("a") { _ in StepOutput() }
        let working = Task { try await worker.run() }
        try await eventually("registered") { worker.isConnected }
        try await eventually("the cluster lists the node's worker") { try await node.engine.listWorkers(liveWithin: 60).count == 1 }
        await group.triggerGracefulShutdown()
        try await running.value
        #expect(!worker.isConnected, "the worker's stream was ended")
        let pool = PostgresPool(url: database, size: 1)
        #expect(try await TaskEngine(pool: pool).listWorkers(liveWithin: 60).isEmpty, "the node left the cluster")
        await pool.shutdown()
        #expect(!LocalPort.accepts(port), "the RPC port is closed")
        await worker.stop()
        _ = await working.result
        _ = try? await blocking { redis.stop() }
    }
}
