import ArgumentParser
import Foundation
import SwiftProtobuf
import TaskerProto

/// `tasker workers`: every worker connected to any node.
struct Workers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The workers connected to every node, as the nodes last reported them (every 2 s).")

    @OptionGroup var client: ClientOptions

    @Option(help: "Only the workers that run this handler.")
    var handler: String = ""

    func run() async throws {
        try await reporting {
            let workers = try await client.withClient { try await $0.workers(handler: handler) }
            if client.json {
                client.print(Tasker_V1_ListWorkersResponse.with { $0.workers = workers })
                return
            }
            let rows = workers.map { worker in
                [worker.name, worker.node, "\(worker.inFlight)/\(worker.slots)", worker.draining ? "draining" : "ready",
                 Self.ago(worker.lastHeartbeatAt), worker.handlers.joined(separator: ","), worker.workerID]
            }
            print(Table.render(header: ["NAME", "NODE", "BUSY", "STATE", "HEARD", "HANDLERS", "ID"], rows: rows))
            if workers.isEmpty { FileHandle.standardError.write(Data("no worker is connected\(handler.isEmpty ? "" : " for handler '\(handler)'")\n".utf8)) }
        }
    }

    static func ago(_ timestamp: Google_Protobuf_Timestamp) -> String {
        let seconds = max(Date().timeIntervalSince(timestamp.date), 0)
        return seconds < 1 ? "now" : "\(Int(seconds)) s ago"
    }
}

/// `tasker queues`: each handler's steps and workers in the whole cluster.
struct Queues: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Each handler's steps ready, running and waiting to retry, and its workers.")

    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await reporting {
            let queues = try await client.withClient { try await $0.queues() }
            if client.json {
                client.print(Tasker_V1_ListQueuesResponse.with { $0.queues = queues })
                return
            }
            let rows = queues.map { queue in
                [queue.handler, "\(queue.ready)", "\(queue.inProgress)", "\(queue.waitingForRetry)", "\(queue.workers)", "\(queue.freeSlots)"]
            }
            print(Table.render(header: ["HANDLER", "READY", "RUNNING", "RETRYING", "WORKERS", "FREE SLOTS"], rows: rows))
        }
    }
}
