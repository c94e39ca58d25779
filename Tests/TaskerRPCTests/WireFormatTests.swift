import NIOCore
import Testing

@testable import TaskerRPC

@Suite struct MessageDeframerTests {
    private func framed(_ payloads: [[UInt8]]) -> ByteBuffer {
        var buffer = ByteBuffer()
        for payload in payloads { buffer.writeGRPCMessage(ByteBuffer(bytes: payload)) }
        return buffer
    }

    @Test func splitsMessagesAcrossArbitraryChunks() throws {
        let payloads: [[UInt8]] = [[1, 2, 3], [], Array(repeating: 7, count: 1000), [9]]
        let wire = Array(framed(payloads).readableBytesView)
        for chunkSize in [1, 2, 5, 7, 64, wire.count] {
            var deframer = MessageDeframer(limit: 4096)
            var received: [[UInt8]] = []
            var offset = 0
            while offset < wire.count {
                let end = min(offset + chunkSize, wire.count)
                wire[offset..<end].withUnsafeBytes { deframer.append($0) }
                while let message = try deframer.next() { received.append(Array(message.readableBytesView)) }
                offset = end
            }
            #expect(received == payloads, "chunk size \(chunkSize)")
            try deframer.finish()
        }
    }

    @Test func rejectsMessagesOverTheLimitFromThePrefixAlone() {
        var deframer = MessageDeframer(limit: 100)
        var prefix = ByteBuffer()
        prefix.writeInteger(UInt8(0))
        prefix.writeInteger(UInt32(101))
        deframer.append(prefix)
        #expect(throws: MessageDeframer.Failure.tooLarge(length: 101, limit: 100)) { try deframer.next() }
        #expect(MessageDeframer.Failure.tooLarge(length: 101, limit: 100).status.code == .resourceExhausted)
    }

    @Test func acceptsAMessageExactlyAtTheLimit() throws {
        var deframer = MessageDeframer(limit: 100)
        deframer.append(framed([Array(repeating: 1, count: 100)]))
        #expect(try deframer.next()?.readableBytes == 100)
    }

    @Test func rejectsACompressedFlagWithoutEncoding() {
        var deframer = MessageDeframer(limit: 100)
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt8(1))
        buffer.writeInteger(UInt32(1))
        buffer.writeInteger(UInt8(0))
        deframer.append(buffer)
        #expect(throws: MessageDeframer.Failure.compressedWithoutEncoding) { try deframer.next() }
        #expect(MessageDeframer.Failure.compressedWithoutEncoding.status.code == .internal)
    }

    @Test func reportsAStreamThatEndsInsideAMessage() throws {
        var deframer = MessageDeframer(limit: 100)
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(UInt32(10))
        buffer.writeBytes([1, 2, 3])
        deframer.append(buffer)
        #expect(try deframer.next() == nil)
        #expect(throws: MessageDeframer.Failure.truncated(missing: 7)) { try deframer.finish() }

        var partialPrefix = MessageDeframer(limit: 100)
        partialPrefix.append(ByteBuffer(bytes: [0, 0]))
        #expect(try partialPrefix.next() == nil)
        #expect(throws: MessageDeframer.Failure.truncated(missing: 3)) { try partialPrefix.finish() }
    }
}

@Suite struct GRPCTimeoutTests {
    @Test(arguments: [
        ("1H", Int64(3_600_000_000_000)), ("2M", 120_000_000_000), ("3S", 3_000_000_000),
        ("4m", 4_000_000), ("5u", 5_000), ("6n", 6), ("99999999S", 99_999_999_000_000_000),
    ])
    func parsesEveryUnit(value: String, nanos: Int64) {
        #expect(GRPCTimeout.parse(value) == nanos)
    }

    @Test(arguments: ["", "S", "10", "123456789S", "1s", "-1S", "1.5S", "1 S", "abcS"])
    func rejectsMalformedValues(value: String) {
        #expect(GRPCTimeout.parse(value) == nil)
    }

    @Test func encodesInAtMostEightDigitsAndNeverShortens() {
        for nanos: Int64 in [1, 999, 1_000, 123_456_789, 100_000_000_000, 86_400_000_000_000, 1 << 62] {
            let encoded = GRPCTimeout.encode(nanoseconds: nanos)
            #expect(encoded.count <= 9, "\(encoded)")
            let decoded = GRPCTimeout.parse(encoded)!
            #expect(decoded >= nanos, "\(nanos) → \(encoded)")
        }
        #expect(GRPCTimeout.encode(nanoseconds: 1_000_000) == "1000000n")
        #expect(GRPCTimeout.encode(nanoseconds: 123_456_789) == "123457u")
    }
}

@Suite struct PercentEncodingTests {
    @Test func leavesPrintableASCIIAlone() {
        #expect(PercentEncoding.encode("plain message: ok!") == "plain message: ok!")
    }

    @Test func escapesControlCharactersPercentAndUnicode() {
        #expect(PercentEncoding.encode("a%b\n☺") == "a%25b%0A%E2%98%BA")
    }

    @Test func roundTripsTheInteropSpecialMessage() {
        let message = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n"
        #expect(PercentEncoding.decode(PercentEncoding.encode(message)) == message)
    }

    @Test func keepsMalformedEscapesAsTheyAre() {
        #expect(PercentEncoding.decode("100%") == "100%")
        #expect(PercentEncoding.decode("%zz%4") == "%zz%4")
        #expect(PercentEncoding.decode("%41") == "A")
    }
}

@Suite struct Base64Tests {
    @Test func roundTripsEveryLengthWithoutPadding() {
        for length in 0..<20 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 * 37 + 11) }
            let encoded = Base64.encode(bytes)
            #expect(!encoded.contains("="))
            #expect(Base64.decode(encoded) == bytes)
        }
    }

    @Test func decodesPaddedInput() {
        #expect(Base64.decode("q6ur") == [0xAB, 0xAB, 0xAB])
        #expect(Base64.decode("qw==") == [0xAB])
        #expect(Base64.decode("qw") == [0xAB])
    }

    @Test func rejectsCharactersOutsideTheAlphabetAndImpossibleLengths() {
        #expect(Base64.decode("ab*d") == nil)
        #expect(Base64.decode("a") == nil)
    }
}

@Suite struct MetadataTests {
    @Test func lowercasesKeysAndKeepsOrderAndDuplicates() {
        var metadata = Metadata()
        metadata.add("X-Key", "1")
        metadata.add("x-key", "2")
        #expect(metadata["x-key"] == [.string("1"), .string("2")])
        #expect(metadata.firstString("X-KEY") == "1")
    }

    @Test func decodesBinaryValuesAndLeavesOutTransportHeaders() {
        var metadata = Metadata()
        let accepted = [
            metadata.addReceived(name: "x-trace-bin", value: "q6ur"),
            metadata.addReceived(name: "grpc-timeout", value: "1S"),
            metadata.addReceived(name: ":path", value: "/a/b"),
            metadata.addReceived(name: "content-type", value: "application/grpc"),
            metadata.addReceived(name: "x-bad-bin", value: "***"),
        ]
        #expect(accepted == [true, true, true, true, false])
        #expect(metadata.count == 1)
        #expect(metadata.firstBytes("x-trace-bin") == [0xAB, 0xAB, 0xAB])
    }
}
