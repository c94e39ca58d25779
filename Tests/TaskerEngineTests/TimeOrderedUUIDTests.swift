import Foundation
import Testing

@testable import TaskerEngine

struct TimeOrderedUUIDTests {
    @Test func idsAreVersion7UUIDsInLowercase() {
        var seen = Set<String>()
        for _ in 0..<1000 {
            let id = TimeOrderedUUID.make()
            let parsed = UUID(uuidString: id)
            #expect(parsed?.uuidString.lowercased() == id)
            let bytes = parsed.map { withUnsafeBytes(of: $0.uuid) { Array($0) } } ?? []
            #expect(bytes.count == 16 && bytes[6] >> 4 == 7, "version 7")
            #expect(bytes.count == 16 && bytes[8] >> 6 == 0b10, "RFC 9562 variant")
            seen.insert(id)
        }
        #expect(seen.count == 1000)
    }

    @Test func theTimeLeadsSoLaterIdsSortLater() {
        #expect(TimeOrderedUUID.make(milliseconds: 0x0123_4567_89AB).hasPrefix("01234567-89ab-7"))
        let earlier = TimeOrderedUUID.make(milliseconds: 1_800_000_000_000)
        let later = TimeOrderedUUID.make(milliseconds: 1_800_000_000_001)
        #expect(earlier < later)
        let now = TimeOrderedUUID.currentMilliseconds()
        let seconds = Date().timeIntervalSince1970
        #expect(abs(Double(now) / 1000 - seconds) < 5)
    }
}
