import SwiftProtobuf
@testable import TaskerEngine

enum FuzzStoredJSON {
    /// Text read as stored JSON; what reads must encode and read back to the same value.
    static func run(_ input: UnsafeRawBufferPointer) {
        guard let value = try? StoredJSON.value(String(decoding: input, as: UTF8.self)) else { return }
        guard let text = try? value.jsonString() else { return }  // NaN cannot come from JSON text; nothing else fails
        guard let again = try? StoredJSON.value(text) else { preconditionFailure("its own encoding did not read: \(text.prefix(200))") }
        precondition(again == value, "a value changed when encoded and read again: \(text.prefix(200))")
    }
}
