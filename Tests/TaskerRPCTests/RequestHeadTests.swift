import Testing

@testable import TaskerRPC

@Suite struct RequestHeadTests {
    private func fields(_ extra: [(String, String)] = [], method: String = "POST", contentType: String? = "application/grpc")
        -> [(name: String, value: String)]
    {
        var fields: [(name: String, value: String)] = [(":method", method), (":scheme", "http"), (":path", "/pkg.Svc/Call")]
        if let contentType { fields.append(("content-type", contentType)) }
        fields.append(("te", "trailers"))
        return fields + extra.map { (name: $0.0, value: $0.1) }
    }

    @Test func parsesPathTimeoutAndMetadata() throws {
        let head = try RequestHead.parse(fields([("grpc-timeout", "250m"), ("x-user", "ada"), ("x-id-bin", "AQID")])).get()
        #expect(head.path == "/pkg.Svc/Call")
        #expect(head.timeoutNanoseconds == 250_000_000)
        #expect(head.metadata.firstString("x-user") == "ada")
        #expect(head.metadata.firstBytes("x-id-bin") == [1, 2, 3])
    }

    @Test(arguments: ["application/grpc", "application/grpc+proto", "application/grpc;charset=utf-8"])
    func acceptsGRPCContentTypes(contentType: String) {
        #expect((try? RequestHead.parse(fields(contentType: contentType)).get()) != nil)
    }

    @Test(arguments: ["application/json", "application/grpcx", "text/plain"])
    func answersOtherContentTypesWithHTTP415(contentType: String) {
        guard case .failure(.http(let status, let reason)) = RequestHead.parse(fields(contentType: contentType)) else {
            Issue.record("expected an HTTP rejection")
            return
        }
        #expect(status == 415)
        #expect(reason.message.contains(contentType))
    }

    @Test func answersAMissingContentTypeWithHTTP415() {
        guard case .failure(.http(415, _)) = RequestHead.parse(fields(contentType: nil)) else {
            Issue.record("expected HTTP 415")
            return
        }
    }

    @Test func answersNonPOSTWithHTTP405() {
        guard case .failure(.http(405, _)) = RequestHead.parse(fields(method: "GET")) else {
            Issue.record("expected HTTP 405")
            return
        }
    }

    @Test func refusesUnsupportedCompressionWithUnimplemented() {
        guard case .failure(.grpc(let status)) = RequestHead.parse(fields([("grpc-encoding", "gzip")])) else {
            Issue.record("expected a gRPC rejection")
            return
        }
        #expect(status.code == .unimplemented)
        #expect(status.message.contains("gzip"))
    }

    @Test func refusesAMalformedTimeout() {
        guard case .failure(.grpc(let status)) = RequestHead.parse(fields([("grpc-timeout", "soon")])) else {
            Issue.record("expected a gRPC rejection")
            return
        }
        #expect(status.code == .internal)
        #expect(status.message.contains("soon"))
    }

    @Test func refusesBinaryMetadataThatIsNotBase64() {
        guard case .failure(.grpc(let status)) = RequestHead.parse(fields([("x-data-bin", "!!")])) else {
            Issue.record("expected a gRPC rejection")
            return
        }
        #expect(status.message.contains("x-data-bin"))
    }
}
