import ArgumentParser
import Foundation
import SwiftProtobuf
import TaskerClient
import TaskerProto
import TaskerRPC
import TaskerTLS

/// What every client subcommand takes: where the server is and how to reach it, and whether
/// to print JSON.
struct ClientOptions: ParsableArguments {
    @OptionGroup var connection: ConnectionOptions

    @Flag(help: "Print JSON (the wire contract's field names) instead of text, for scripts.")
    var json = false

    /// Runs `body` with a client, turning what can go wrong into a message on standard error
    /// and the exit code that says what happened.
    func withClient<Result>(_ body: (TaskerClient) async throws -> Result) async throws -> Result {
        try await connection.withClient(body)
    }

    func print(_ message: any SwiftProtobuf.Message) {
        Swift.print(CommandOutput.json(message))
    }

    /// A task as JSON or as text.
    func show(_ task: Tasker_V1_Task) {
        if json { print(task) } else { Swift.print(CommandOutput.describe(task)) }
    }
}

/// An error shown to a person, with the exit code of Tasker's discussion.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    let code: Int32

    static let taskFailed: Int32 = 1
    static let unreachable: Int32 = 2
    static let notFound: Int32 = 3
    static let refused: Int32 = 4
    static let badInput: Int32 = 65

    init(_ description: String, code: Int32) {
        self.description = description
        self.code = code
    }

    init(_ error: any Error, server: String) {
        if let failure = error as? CommandFailure {
            self = failure
            return
        }
        guard let rpc = error as? RPCError else {
            self.init("cannot reach the server at \(server): \(error)", code: Self.unreachable)
            return
        }
        switch rpc.code {
        case .unavailable, .deadlineExceeded:
            self.init("cannot reach the server at \(server): \(rpc.message)", code: Self.unreachable)
        case .notFound:
            self.init(rpc.message, code: Self.notFound)
        case .invalidArgument, .failedPrecondition, .alreadyExists, .outOfRange, .resourceExhausted, .unauthenticated, .permissionDenied:
            self.init("\(rpc.code): \(rpc.message)", code: Self.refused)
        default:
            self.init("\(rpc.code): \(rpc.message)", code: Self.unreachable)
        }
    }
}

extension AsyncParsableCommand {
    /// Runs a client command, printing a failure to standard error with its exit code.
    func reporting(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let failure as CommandFailure {
            FileHandle.standardError.write(Data("tasker: \(failure.description)\n".utf8))
            throw ExitCode(failure.code)
        }
    }
}

/// Reading what a person gives on the command line.
enum CommandInput {
    /// A JSON object given inline, or `@path` for a file holding one.
    static func object(_ text: String, what: String) throws -> Google_Protobuf_Struct {
        var json = text
        if text.hasPrefix("@") {
            let path = String(text.dropFirst())
            guard let contents = FileManager.default.contents(atPath: path) else {
                throw CommandFailure("cannot read the file \(path) given for \(what)", code: CommandFailure.badInput)
            }
            json = String(decoding: contents, as: UTF8.self)
        }
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: Data(json.utf8), options: [.fragmentsAllowed])
        } catch {
            let reason = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "\(error)"
            throw CommandFailure("\(what) is not valid JSON: \(reason)", code: CommandFailure.badInput)
        }
        guard parsed is [String: Any] else {
            throw CommandFailure("\(what) must be a JSON object ({...}), not \(kind(of: parsed))", code: CommandFailure.badInput)
        }
        do {
            return try Google_Protobuf_Struct(jsonString: json)
        } catch {
            throw CommandFailure("\(what) cannot be used: \(error)", code: CommandFailure.badInput)
        }
    }

    private static func kind(of value: Any) -> String {
        switch value {
        case is [Any]: "an array"
        case is String: "a string"
        case is NSNumber: "a number"
        case is NSNull: "null"
        default: "\(type(of: value))"
        }
    }
}
