import Foundation
import Hummingbird
import HummingbirdCore
import SwiftProtobuf
import TaskerEngine
import TaskerRPC

/// How the JSON API turns HTTP into the RPCs' messages and back: requests from a path, a query
/// and a body in the proto JSON mapping, responses in the same mapping with the .proto's field
/// names, refusals as `{"code", "message"}` with the HTTP status of their gRPC code.
enum APIExchange {
    /// Request bodies larger than this are refused, as the RPC port refuses larger messages.
    static let bodyLimit = 4 << 20

    static let encoding: JSONEncodingOptions = {
        var options = JSONEncodingOptions()
        options.preserveProtoFieldNames = true
        return options
    }()

    /// A request message from query parameters (`page_size=20`).
    static func request<Message: SwiftProtobuf.Message>(_ type: Message.Type, query fields: [String: String]) throws(RPCError) -> Message {
        do {
            return try Message(jsonUTF8Data: try JSONSerialization.data(withJSONObject: fields))
        } catch {
            // Which one is wrong: each alone, so the message names it.
            for (name, value) in fields.sorted(by: { $0.key < $1.key }) {
                let single = try? JSONSerialization.data(withJSONObject: [name: value])
                if (try? Message(jsonUTF8Data: single ?? Data())) == nil {
                    throw RPCError(.invalidArgument, "the query parameter \(name)=\(InputCheck.quoted(value)) is not valid here")
                }
            }
            throw RPCError(.invalidArgument, "the query parameters do not make a \(Message.protoMessageName)")
        }
    }

    /// What a query parameter takes: text as the request's JSON field would (a number for a
    /// number field), or one of an enum's names, short (`ERROR`) or whole (`TASK_STATUS_ERROR`).
    enum QueryField: Sendable {
        case text
        case oneOf(prefix: String, names: [String])
    }

    /// The query's parameters by name, each of them one `allowed` names.
    static func parameters(_ query: FlatDictionary<Substring, Substring>, allowed: [String: QueryField]) throws(RPCError) -> [String: String] {
        var fields: [String: String] = [:]
        for (key, value) in query {
            let name = String(key)
            guard let kind = allowed[name] else {
                let known = allowed.keys.sorted()
                throw RPCError(.invalidArgument, "unknown query parameter \(InputCheck.quoted(name))"
                    + (known.isEmpty ? " (this route takes none)" : " (the parameters are \(known.joined(separator: ", ")))"))
            }
            guard fields[name] == nil else { throw RPCError(.invalidArgument, "the query parameter \(InputCheck.quoted(name)) is given twice") }
            let text = String(value)
            switch kind {
            case .text:
                fields[name] = text
            case .oneOf(let prefix, let names):
                let short = text.uppercased().hasPrefix(prefix) ? String(text.uppercased().dropFirst(prefix.count)) : text.uppercased()
                guard text.isEmpty || names.contains(short) else {
                    throw RPCError(.invalidArgument, "the query parameter \(name)=\(InputCheck.quoted(text)) is not one of \(names.joined(separator: ", "))")
                }
                if !text.isEmpty { fields[name] = prefix + short }
            }
        }
        return fields
    }

    /// A request message from a JSON body; an empty body is the empty message.
    static func request<Message: SwiftProtobuf.Message>(_ type: Message.Type, body request: inout Request) async throws(RPCError) -> Message {
        if let contentType = request.headers[.contentType], !contentType.lowercased().hasPrefix("application/json") {
            // A browser sends a cross-site form or text/plain body without asking first; JSON
            // it must ask (CORS preflight) for, which this port never grants.
            throw RPCError(.invalidArgument, "the body must be JSON (Content-Type: application/json), not \(InputCheck.quoted(contentType))")
        }
        let bytes: ByteBuffer
        do {
            bytes = try await request.collectBody(upTo: bodyLimit)
        } catch {
            var marked = Metadata()
            marked.add(tooLarge, "1")
            throw RPCError(.resourceExhausted, "the body is larger than \(bodyLimit >> 20) MiB", metadata: marked)
        }
        if bytes.readableBytes == 0 { return Message() }
        let data = Data(bytes.readableBytesView)
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            throw RPCError(.invalidArgument, "the body is not JSON: \(Self.parseFailure(error))")
        }
        guard let fields = object as? [String: Any] else {
            throw RPCError(.invalidArgument, "the body must be a JSON object of \(Message.protoMessageName)")
        }
        let problems = ProtoJSONCheck.served.problems(in: fields, as: "." + Message.protoMessageName)
        guard problems.isEmpty else {
            let listed = problems.prefix(10).map(\.description).joined(separator: "; ")
            throw RPCError(.invalidArgument, "the body is not a valid \(Message.protoMessageName): \(listed)"
                + (problems.count > 10 ? "; and \(problems.count - 10) more" : ""))
        }
        do {
            return try Message(jsonUTF8Data: data)
        } catch {
            throw RPCError(.invalidArgument, "the body is not a valid \(Message.protoMessageName): \(error)")
        }
    }

    private static func parseFailure(_ error: any Error) -> String {
        let described = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "\(error)"
        return String(described.prefix(120))
    }

    /// A path parameter as the caller wrote it, percent-decoded.
    static func parameter(_ name: String, _ context: BasicRequestContext) -> String {
        let raw = context.parameters.get(name) ?? ""
        return raw.removingPercentEncoding ?? raw
    }

    static func json(_ message: some SwiftProtobuf.Message) throws(RPCError) -> Response {
        do {
            let data = try message.jsonUTF8Data(options: encoding)
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
        } catch {
            throw RPCError(.internal, "could not write \(type(of: message).protoMessageName) as JSON: \(error)")
        }
    }


    /// Marks the refusal of a body too large, which HTTP names apart (413) from a limit of use.
    private static let tooLarge = "tasker-body-too-large"

    /// A refusal as the API sends it.
    static func refusal(_ error: RPCError) -> Response {
        let status = error.metadata.firstString(tooLarge) != nil ? .contentTooLarge : httpStatus(error.code)
        return Response.json(status, ["code": error.code.description, "message": error.status.sentMessage])
    }

    /// The HTTP status of a gRPC code (google.rpc.Code's mapping; FAILED_PRECONDITION as 412,
    /// so that a step in the wrong state is told apart from a request written wrong).
    static func httpStatus(_ code: StatusCode) -> HTTPResponse.Status {
        switch code {
        case .ok: .ok
        case .invalidArgument, .outOfRange: .badRequest
        case .unauthenticated: .unauthorized
        case .permissionDenied: .forbidden
        case .notFound: .notFound
        case .alreadyExists, .aborted: .conflict
        case .failedPrecondition: .preconditionFailed
        case .resourceExhausted: .tooManyRequests
        case .cancelled: .init(code: 499, reasonPhrase: "Client Closed Request")
        case .unimplemented: .notImplemented
        case .unavailable: .serviceUnavailable
        case .deadlineExceeded: .gatewayTimeout
        case .unknown, .internal, .dataLoss: .internalServerError
        }
    }
}
