/// New ids: version 4 UUIDs in their lowercase text form, drawn from the system's random
/// source. Foundation's UUID opens the random device anew for each one, and a task takes one
/// id per step.
enum RandomUUID {
    static func make() -> String {
        var generator = SystemRandomNumberGenerator()
        // The 16 bytes as two big-endian halves: the version nibble is the top of byte 6,
        // the variant the top two bits of byte 8.
        let high = (generator.next() as UInt64) & ~0xF000 | 0x4000
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
}
