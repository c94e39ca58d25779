import Testing

@testable import TaskerEngine

@Suite struct JSONSchemaTests {
    let order = """
        {"type": "object",
         "required": ["cart_id", "items"],
         "additionalProperties": false,
         "properties": {
           "cart_id": {"type": "integer", "minimum": 1},
           "currency": {"enum": ["EUR", "USD"]},
           "email": {"type": "string", "pattern": "^[^@]+@[^@]+$", "maxLength": 64},
           "items": {"type": "array", "minItems": 1, "maxItems": 3,
                     "items": {"type": "object", "required": ["sku"],
                               "properties": {"sku": {"type": "string", "minLength": 3}, "qty": {"type": "number", "exclusiveMinimum": 0}}}}
         }}
        """

    private func violations(_ document: String) throws -> [String] {
        try JSONSchema(text: order).violations(of: JSONValue(parsing: document)!).map(\.description)
    }

    @Test func aConformingDocumentHasNoViolations() throws {
        #expect(try violations(#"{"cart_id": 7, "currency": "EUR", "email": "a@b.c", "items": [{"sku": "abc", "qty": 2}]}"#) == [])
    }

    @Test func violationsNameThePathOfTheFailingValue() throws {
        #expect(try violations(#"{"items": []}"#) == ["$.cart_id: is required", "$.items: must have at least 1 item, has 0"])
        #expect(try violations(#"{"cart_id": "7", "items": [{"sku": "ab"}]}"#) == [
            "$.cart_id: expected integer, got string", "$.items[0].sku: must be at least 3 characters long",
        ])
        #expect(try violations(#"{"cart_id": 0, "items": [{"sku": "abc", "qty": 0}], "extra": true}"#) == [
            "$.cart_id: must be at least 1, is 0", "$.extra: is not an allowed property", "$.items[0].qty: must be more than 0, is 0",
        ])
        #expect(try violations(#"{"cart_id": 1.5, "currency": "GBP", "email": "nope", "items": [{"sku": "abc"}]}"#) == [
            "$.cart_id: expected integer, got number", "$.currency: must be one of \"EUR\", \"USD\"",
            "$.email: must match the pattern ^[^@]+@[^@]+$",
        ])
    }

    @Test func integersAreNumbers() throws {
        let schema = try JSONSchema(text: #"{"type": "number", "maximum": 10}"#)
        #expect(schema.violations(of: .number(3)).isEmpty)
        #expect(schema.violations(of: .number(11)).map(\.description) == ["$: must be at most 10, is 11"])
    }

    @Test(arguments: [
        ("not json", "$: not JSON"),
        (#"{"type": "strnig"}"#, "$.type: unknown type 'strnig'"),
        (#"{"minLength": -1}"#, "$.minLength: must be a non-negative integer"),
        // Found by the schema fuzz target: converting it to Int trapped.
        (#"{"maxItems": 1e300}"#, "$.maxItems: must be a non-negative integer"),
        (#"{"minLength": 2.5}"#, "$.minLength: must be a non-negative integer"),
        (#"{"pattern": "("}"#, "$.pattern: '(' is not a valid regular expression: missing ')' at character 2"),
        (#"{"oneOf": []}"#, "$.oneOf: 'oneOf' is not supported here (or has the wrong kind of value)"),
        (#"{"properties": {"a": 5}}"#, "$.properties.a: a schema must be an object"),
        (#"{"enum": []}"#, "$.enum: enum must not be empty"),
    ])
    func invalidSchemasAreRefusedWithTheReason(text: String, reason: String) {
        do {
            _ = try JSONSchema(text: text)
            Issue.record("accepted \(text)")
        } catch let error as JSONSchema.InvalidSchema {
            #expect("\(error.path): \(error.message)" == reason)
        } catch {
            Issue.record("unexpected \(error)")
        }
    }
}
