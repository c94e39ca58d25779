import Foundation
import TaskerAuth
import TaskerRPC
import TaskerStore
import TaskerWorker
import Testing

/// The Swift worker SDK on a node with `--auth`: a token the server does not take ends `run`
/// with its status instead of reconnecting for ever, and a revocation ends a connected worker.
@Suite(.timeLimit(.minutes(2))) struct WorkerTokenTests {
    @Test func aWorkerIsRefusedWithoutATokenAndCutOffOnceItsTokenIsRevoked() async throws {
        let harness = try await DispatchHarness { $0.auth = true }
        let pool = PostgresPool(url: harness.databaseURL, size: 1)
        let store = TokenStore(pool: pool)
        let (token, _) = try await store.create(name: "sdk-worker", role: .worker, createdBy: "test")
        let (viewer, _) = try await store.create(name: "sdk-viewer", role: .viewer, createdBy: "test")

        func worker(_ token: String?) -> Worker {
            var configuration = Worker.Configuration(name: "sdk", slots: 1, reconnectBackoff: (0.05, 0.5), drainTimeout: 5)
            configuration.token = token
            let worker = Worker(host: "127.0.0.1", port: harness.nodes[0].server.port, configuration: configuration)
            worker.handle("sdk.a") { _ in StepOutput() }
            return worker
        }
        func ending(_ worker: Worker) async -> RPCError? {
            do {
                try await worker.run()
                return nil
            } catch {
                return error as? RPCError
            }
        }

        #expect(await ending(worker(nil))?.code == .unauthenticated, "no token: refused, not retried")
        let refused = await ending(worker(viewer.text))
        #expect(refused?.code == .permissionDenied && refused?.message.contains("needs the role worker") == true)

        let connected = worker(token.text)
        let running = Task { await ending(connected) }
        try await eventually("the worker with a token registered") { connected.isConnected }
        _ = try await store.revoke(name: "sdk-worker")
        let revoked = Date()
        let end = await running.value
        #expect(end?.code == .unauthenticated && end?.message.contains("revoked") == true, "\(String(describing: end))")
        #expect(Date().timeIntervalSince(revoked) < 5)
        #expect(await harness.nodes[0].dispatcher?.connectedWorkers == 0)
        await pool.shutdown()
        await harness.stop()
    }
}
