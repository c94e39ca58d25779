// A worker for an e-commerce order, in Swift on the TaskerWorker SDK:
//
//   validate_cart → process_payment ‖ reserve_inventory → create_order → send_confirmation
//
// It registers the `order_checkout` template when it connects and runs its five handlers until
// SIGINT or SIGTERM, then drains (finishes the steps it holds). A task whose context has
// "payment_failures": N sees its payment fail N times (a gateway timeout, retried with
// backoff) before it goes through.
//
//   tasker-example-ecommerce [--server 127.0.0.1:7420] [--slots 8]
import Dispatch
import Foundation
import TaskerWorker

func option(_ name: String, _ fallback: String) -> String {
    let arguments = CommandLine.arguments
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return fallback }
    return arguments[index + 1]
}

let server = option("--server", ProcessInfo.processInfo.environment["TASKER_SERVER"] ?? "127.0.0.1:7420")
guard let colon = server.lastIndex(of: ":"), let port = Int(server[server.index(after: colon)...]) else {
    FileHandle.standardError.write(Data("tasker-example-ecommerce: --server must be host:port, not \(server)\n".utf8))
    exit(64)
}
let host = server[..<colon].isEmpty ? "127.0.0.1" : String(server[..<colon])

let worker = Worker(
    host: host, port: port,
    configuration: .init(name: "ecommerce", slots: Int(option("--slots", "8")) ?? 8, templates: [Checkout.template]))
Checkout.handle(on: worker)

// SIGINT or SIGTERM: drain, then exit.
var stopping: [any DispatchSourceSignal] = []
for signalNumber in [SIGINT, SIGTERM] {
    signal(signalNumber, SIG_IGN)
    let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
    source.setEventHandler { Task { await worker.stop() } }
    source.resume()
    stopping.append(source)
}
print("ecommerce worker: serving order_checkout on \(host):\(port)")
do {
    try await worker.run()
    print("ecommerce worker: stopped")
} catch {
    FileHandle.standardError.write(Data("ecommerce worker: \(error)\n".utf8))
    exit(1)
}
