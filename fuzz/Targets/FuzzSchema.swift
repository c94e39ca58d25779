@testable import TaskerEngine

enum FuzzSchema {
    /// A schema, then (after a 0xFF byte) a document: compiled, then checked.
    static func run(_ input: UnsafeRawBufferPointer) {
        let (schemaBytes, documentBytes) = halves(input)
        guard let schema = try? JSONSchema(text: String(decoding: schemaBytes, as: UTF8.self)),
              let document = JSONValue(parsing: String(decoding: documentBytes, as: UTF8.self))
        else { return }
        _ = schema.violations(of: document)
    }
}
