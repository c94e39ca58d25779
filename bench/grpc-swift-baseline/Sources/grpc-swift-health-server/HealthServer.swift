import GRPCCore
import GRPCNIOTransportHTTP2
import GRPCProtobuf

/// grpc.health.v1.Health/Check answering SERVING, registered by hand (no code generator needed).
struct HealthCheck: RegistrableRPCService {
    func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        router.registerHandler(
            forMethod: MethodDescriptor(fullyQualifiedService: "grpc.health.v1.Health", method: "Check"),
            deserializer: ProtobufDeserializer<Grpc_Health_V1_HealthCheckRequest>(),
            serializer: ProtobufSerializer<Grpc_Health_V1_HealthCheckResponse>()
        ) { request, _ in
            _ = try await ServerRequest(stream: request)
            var response = Grpc_Health_V1_HealthCheckResponse()
            response.status = .serving
            return StreamingServerResponse(single: ServerResponse(message: response))
        }
    }
}

@main
struct HealthServer {
    static func main() async throws {
        let arguments = CommandLine.arguments
        guard arguments.count == 2, let port = Int(arguments[1]) else {
            print("usage: grpc-swift-health-server PORT")
            return
        }
        let server = GRPCServer(
            transport: .http2NIOPosix(
                address: .ipv4(host: "127.0.0.1", port: port), transportSecurity: .plaintext),
            services: [HealthCheck()])
        print("grpc-swift-2 health server on 127.0.0.1:\(port)")
        try await server.serve()
    }
}
