import Foundation
import Testing

@testable import TaskerEngine

struct RandomUUIDTests {
    @Test func idsAreVersion4UUIDsInLowercase() {
        var seen = Set<String>()
        for _ in 0..<1000 {
            let id = RandomUUID.make()
            let parsed = UUID(uuidString: id)
            #expect(parsed?.uuidString.lowercased() == id)
            let bytes = parsed.map { withUnsafeBytes(of: $0.uuid) { Array($0) } } ?? []
            #expect(bytes.count == 16 && bytes[6] >> 4 == 4, "version 4")
            #expect(bytes.count == 16 && bytes[8] >> 6 == 0b10, "RFC 4122 variant")
            seen.insert(id)
        }
        #expect(seen.count == 1000)
    }
}
