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
import Foundation
import Logging
import ServiceLifecycle
import TaskerWorker

let usage = """
    usage: tasker-example-ecommerce [--server host:port] [--slots n]

    Runs the five handlers of order_checkout (and registers that template) until SIGINT or
    SIGTERM, then finishes the steps it holds. While the server cannot be reached it tries again,
    with backoff, and says so on standard error.

      --server host:port  the Tasker server (env TASKER_SERVER; default 127.0.0.1:7420)
      --slots n           steps run at once (default 8)
      -h, --help          this text

    """

/// `--name value` pairs; --help prints the usage; anything else is a usage error (64).
func options() -> [String: String] {
    var found: [String: String] = [:]
    var arguments = CommandLine.arguments.dropFirst()
    while let argument = arguments.popFirst() {
        switch argument {
        case "-h", "--help":
            say(usage)
            exit(0)
        case "--server", "--slots":
            guard let value = arguments.popFirst() else { fail("\(argument) needs a value") }
            found[argument] = value
        default:
            fail("unknown argument '\(argument.prefix(40))'")
        }
    }
    return found
}

/// Written at once, even into a pipe or a file, so that "serving" is in a log as it happens.
func say(_ text: String) {
    FileHandle.standardOutput.write(Data((text.hasSuffix("\n") ? text : text + "\n").utf8))
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("tasker-example-ecommerce: \(message)\n\n\(usage)".utf8))
    exit(64)
}

let given = options()
let server = given["--server"] ?? ProcessInfo.processInfo.environment["TASKER_SERVER"] ?? "127.0.0.1:7420"
guard let colon = server.lastIndex(of: ":"), let port = Int(server[server.index(after: colon)...]), (1...65535).contains(port) else {
    fail("--server must be host:port, not '\(server.prefix(40))'")
}
let host = server[..<colon].isEmpty ? "127.0.0.1" : String(server[..<colon])
guard let slots = Int(given["--slots"] ?? "8"), (1...10_000).contains(slots) else {
    fail("--slots must be a whole number from 1 to 10000, not '\(given["--slots"]!.prefix(40))'")
}

let worker = Worker(host: host, port: port, configuration: .init(name: "ecommerce", slots: slots, templates: [Checkout.template]))
Checkout.handle(on: worker)

// SIGINT or SIGTERM: drain, then exit.
let lifetime = ServiceGroup(services: [worker], gracefulShutdownSignals: [.sigterm, .sigint], logger: Logger(label: "ecommerce"))
say("ecommerce worker: serving order_checkout on \(host):\(port)")
do {
    try await lifetime.run()
    say("ecommerce worker: stopped")
} catch {
    FileHandle.standardError.write(Data("ecommerce worker: \(error)\n".utf8))
    exit(1)
}
