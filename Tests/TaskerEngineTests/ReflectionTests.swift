import Foundation
import SwiftProtobuf
import TaskerServer
import Testing

@testable import TaskerRPC

@Suite struct ReflectionTests {
    let reflection = try! TaskerService.reflection()

    private func ask(_ configure: (inout Grpc_Reflection_V1_ServerReflectionRequest) -> Void) -> Grpc_Reflection_V1_ServerReflectionResponse {
        var request = Grpc_Reflection_V1_ServerReflectionRequest()
        configure(&request)
        return reflection.answer(request)
    }

    @Test func listsTheServedServices() {
        let names = ask { $0.listServices = "*" }.listServicesResponse.service.map(\.name)
        #expect(names.contains("tasker.v1.Tasker") && names.contains("grpc.health.v1.Health"))
        #expect(names.contains("grpc.reflection.v1.ServerReflection"))
    }

    @Test func aSymbolBringsItsFileAndEveryImport() throws {
        let files = try ask { $0.fileContainingSymbol = "tasker.v1.Tasker.SubmitTask" }.fileDescriptorResponse.fileDescriptorProto
            .map { try Google_Protobuf_FileDescriptorProto(serializedBytes: $0).name }
        #expect(files.first == "tasker/v1/tasker.proto")
        #expect(Set(files) == ["tasker/v1/tasker.proto", "google/protobuf/struct.proto", "google/protobuf/timestamp.proto"])
        let nested = ask { $0.fileContainingSymbol = "tasker.v1.WorkerMessage" }.fileDescriptorResponse.fileDescriptorProto
        #expect(nested.count == 4, "workers.proto imports tasker.proto, struct and timestamp")
    }

    @Test func unknownNamesAreNotFound() {
        #expect(ask { $0.fileContainingSymbol = "tasker.v1.Nope" }.errorResponse.errorCode == Int32(StatusCode.notFound.rawValue))
        #expect(ask { $0.fileByFilename = "nope.proto" }.errorResponse.errorMessage.contains("nope.proto"))
        #expect(ask { _ in }.errorResponse.errorCode == Int32(StatusCode.invalidArgument.rawValue))
    }
}
