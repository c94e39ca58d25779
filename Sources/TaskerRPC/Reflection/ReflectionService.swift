import Foundation
import SwiftProtobuf

/// `grpc.reflection.v1.ServerReflection`: lets stock tooling (grpcurl, grpcio-reflection) list
/// the services and fetch the descriptors of their files. It answers from a FileDescriptorSet the
/// caller provides (`protoc --include_imports --descriptor_set_out`).
public struct ReflectionService: RPCService {
    private let services: [String]
    /// File name → serialized FileDescriptorProto.
    private let files: [String: Data]
    /// File name → the files it imports.
    private let imports: [String: [String]]
    /// Fully qualified symbol (message, enum, service, method) → its file.
    private let symbols: [String: String]

    /// `services` are the fully qualified names of the services to list.
    public init(descriptorSet set: Google_Protobuf_FileDescriptorSet, services: [String]) throws {
        var files: [String: Data] = [:]
        var imports: [String: [String]] = [:]
        var symbols: [String: String] = [:]
        for file in set.file {
            files[file.name] = try file.serializedData()
            imports[file.name] = file.dependency
            let prefix = file.package.isEmpty ? "" : file.package + "."
            func addMessages(_ messages: [Google_Protobuf_DescriptorProto], under scope: String) {
                for message in messages {
                    let name = scope + message.name
                    symbols[name] = file.name
                    for nested in message.enumType { symbols[name + "." + nested.name] = file.name }
                    addMessages(message.nestedType, under: name + ".")
                }
            }
            addMessages(file.messageType, under: prefix)
            for enumeration in file.enumType { symbols[prefix + enumeration.name] = file.name }
            for service in file.service {
                symbols[prefix + service.name] = file.name
                for method in service.method { symbols[prefix + service.name + "." + method.name] = file.name }
            }
        }
        self.files = files
        self.imports = imports
        self.symbols = symbols
        self.services = (services + ["grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"]).sorted()
    }

    /// Served as v1 and as v1alpha, which older tools (and grpcio-reflection's client) still
    /// call: the two have the same messages, field for field.
    public func register(into router: inout RPCRouter) {
        for version in ["v1", "v1alpha"] {
            router.registerBidirectionalStreaming("/grpc.reflection.\(version).ServerReflection/ServerReflectionInfo") {
                (requests: MessageStream<Grpc_Reflection_V1_ServerReflectionRequest>,
                 writer: ResponseWriter<Grpc_Reflection_V1_ServerReflectionResponse>, _) in
                for try await request in requests {
                    try await writer.write(answer(request))
                }
            }
        }
    }

    func answer(_ request: Grpc_Reflection_V1_ServerReflectionRequest) -> Grpc_Reflection_V1_ServerReflectionResponse {
        var response = Grpc_Reflection_V1_ServerReflectionResponse()
        response.validHost = request.host
        response.originalRequest = request
        switch request.messageRequest {
        case .listServices?:
            var list = Grpc_Reflection_V1_ListServiceResponse()
            list.service = services.map { name in
                var service = Grpc_Reflection_V1_ServiceResponse()
                service.name = name
                return service
            }
            response.listServicesResponse = list
        case .fileByFilename(let name)?:
            response.messageResponse = files[name] == nil
                ? .errorResponse(error(.notFound, "no file named '\(name)'"))
                : .fileDescriptorResponse(descriptors(from: name))
        case .fileContainingSymbol(let symbol)?:
            let name = symbol.hasPrefix(".") ? String(symbol.dropFirst()) : symbol
            if let file = symbols[name] {
                response.fileDescriptorResponse = descriptors(from: file)
            } else {
                response.errorResponse = error(.notFound, "no symbol '\(symbol)'")
            }
        case .fileContainingExtension?, .allExtensionNumbersOfType?:
            response.errorResponse = error(.notFound, "the served files declare no extensions")
        case nil:
            response.errorResponse = error(.invalidArgument, "the request names nothing to look up")
        }
        return response
    }

    /// The file and every file it imports, transitively, each once.
    private func descriptors(from root: String) -> Grpc_Reflection_V1_FileDescriptorResponse {
        var ordered: [Data] = []
        var seen = Set<String>()
        var pending = [root]
        while let name = pending.popLast() {
            guard seen.insert(name).inserted, let bytes = files[name] else { continue }
            ordered.append(bytes)
            pending += imports[name, default: []]
        }
        var response = Grpc_Reflection_V1_FileDescriptorResponse()
        response.fileDescriptorProto = ordered
        return response
    }

    private func error(_ code: StatusCode, _ message: String) -> Grpc_Reflection_V1_ErrorResponse {
        var error = Grpc_Reflection_V1_ErrorResponse()
        error.errorCode = Int32(code.rawValue)
        error.errorMessage = message
        return error
    }
}
