import Foundation

/// New ids: version 7 UUIDs (RFC 9562) in their lowercase text form. The first 48 bits are
/// the Unix time in milliseconds, so the rows of new tasks and steps land together at the
/// right edge of their indexes instead of on random pages of them; the other 74 bits are
/// drawn from the system's random source (Foundation's UUID opens the random device anew for
/// each one, and a task takes one id per step).
enum TimeOrderedUUID {
    static func make(milliseconds: UInt64 = currentMilliseconds()) -> String {
        var generator = SystemRandomNumberGenerator()
        // The 16 bytes as two big-endian halves: the time, then the version nibble 7 at the
        // top of byte 6; the variant 0b10 in the top two bits of byte 8.
        let high = (milliseconds & 0xFFFF_FFFF_FFFF) << 16 | 0x7000 | (generator.next() as UInt64) & 0x0FFF
        let low = (generator.next() as UInt64) & ~(0xC000 << 48) | (0x8000 << 48)
        return String(unsafeUninitializedCapacity: 36) { text in
            var position = 0
            for digit in 0..<32 {
                if digit == 8 || digit == 12 || digit == 16 || digit == 20 {
                    text[position] = UInt8(ascii: "-")
                    position += 1
                }
                let half = digit < 16 ? high : low
                let nibble = UInt8(truncatingIfNeeded: half >> UInt64(60 - 4 * (digit % 16))) & 0xF
                text[position] = nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
                position += 1
            }
            return position
        }
    }

    static func currentMilliseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return UInt64(now.tv_sec) * 1000 + UInt64(now.tv_nsec) / 1_000_000
    }
}
