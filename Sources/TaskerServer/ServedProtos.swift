import Foundation
import SwiftProtobuf

/// The descriptors of the protos the server serves: reflection answers from them, and the CLI's
/// template files and the JSON API's bodies are checked against them.
public enum ServedProtos {
    public static let descriptorSet: Google_Protobuf_FileDescriptorSet = {
        let bytes = Data(base64Encoded: ServedDescriptors.fileDescriptorSet, options: .ignoreUnknownCharacters)!
        return try! Google_Protobuf_FileDescriptorSet(serializedBytes: bytes)
    }()
}
