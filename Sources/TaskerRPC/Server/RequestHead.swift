/// The validated HEADERS of a gRPC request.
struct RequestHead {
    var path: String
    var metadata: Metadata
    /// From `grpc-timeout`, in nanoseconds.
    var timeoutNanoseconds: Int64?

    /// Why a request is turned away before any handler runs.
    enum Rejection: Error, Equatable {
        /// Not a gRPC request at all: answered with this HTTP status.
        case http(status: Int, Status)
        /// A gRPC request the server cannot take: answered Trailers-Only.
        case grpc(Status)
    }

    /// Reads the header fields of a request in the order received.
    static func parse(_ fields: [(name: String, value: String)]) -> Result<RequestHead, Rejection> {
        var method: String?
        var path: String?
        var contentType: String?
        var timeout: String?
        var encoding: String?
        var metadata = Metadata()
        for (name, value) in fields {
            switch name {
            case ":method": method = value
            case ":path": path = value
            case "content-type": contentType = value
            case "grpc-timeout": timeout = value
            case "grpc-encoding": encoding = value
            default:
                if !metadata.addReceived(name: name, value: value) {
                    return .failure(.grpc(Status(.internal, "metadata '\(name)' is not valid base64")))
                }
            }
        }
        guard method == "POST" else {
            return .failure(.http(status: 405, Status(.internal, "gRPC requests use POST, not \(method ?? "no method")")))
        }
        guard let contentType, isGRPCContentType(contentType) else {
            return .failure(.http(status: 415, Status(
                .internal, "content-type '\(contentType ?? "")' is not gRPC; send application/grpc")))
        }
        guard let path, path.hasPrefix("/") else {
            return .failure(.grpc(Status(.unimplemented, "request has no method path")))
        }
        if let encoding, encoding != "identity" {
            return .failure(.grpc(Status(.unimplemented, "message encoding '\(encoding)' is not supported; this server accepts identity")))
        }
        var head = RequestHead(path: path, metadata: metadata)
        if let timeout {
            guard let nanos = GRPCTimeout.parse(timeout) else {
                return .failure(.grpc(Status(
                    .internal, "malformed grpc-timeout '\(timeout)': expected up to 8 digits and a unit (H, M, S, m, u, n)")))
            }
            head.timeoutNanoseconds = nanos
        }
        return .success(head)
    }

    /// `application/grpc`, optionally followed by `+format` or `;parameters`.
    static func isGRPCContentType(_ value: String) -> Bool {
        let prefix = "application/grpc"
        guard value.hasPrefix(prefix) else { return false }
        let rest = value.utf8.dropFirst(prefix.utf8.count)
        guard let next = rest.first else { return true }
        return next == UInt8(ascii: "+") || next == UInt8(ascii: ";")
    }
}
