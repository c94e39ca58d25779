import NIOCore
@testable import TaskerRPC

/// A server session that answers every request it parses, as the server does: request heads
/// parsed, DATA deframed and its window given back, a response with a body for each stream.
final class FuzzHTTP2: NGHTTP2SessionDelegate {
    private var fields: [Int32: [(name: String, value: String)]] = [:]
    private var deframers: [Int32: MessageDeframer] = [:]
    private var answer: [Int32] = []
    private var consumed: [(Int32, Int)] = []
    private var bodies: [Int32: ByteBuffer] = [:]

    static func run(_ input: UnsafeRawBufferPointer) {
        let delegate = FuzzHTTP2()
        let session = NGHTTP2Session(role: .server, settings: HTTP2Settings(maxConcurrentStreams: 8), delegate: delegate)
        var output = ByteBuffer()
        // The preface is given, so that the fuzzer spends its time on frames.
        let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) + [0, 0, 0, 4, 0, 0, 0, 0, 0]
        do {
            try preface.withUnsafeBytes { bytes in try session.receive(bytes) }
            try session.receive(input)
            delegate.act(on: session)
            try session.drainOutput(into: &output, limit: 1 << 20)
            // Responses may have freed window: what follows goes out too.
            delegate.act(on: session)
            try session.drainOutput(into: &output, limit: 1 << 21)
        } catch {
            // A fatal error ends the connection.
        }
    }

    private func act(on session: NGHTTP2Session) {
        for (streamID, count) in consumed { session.consume(streamID: streamID, count: count) }
        consumed.removeAll()
        for streamID in answer {
            var headers = HeaderBlock()
            headers.add(":status", "200")
            headers.add("content-type", "application/grpc")
            var body = ByteBuffer()
            body.writeGRPCMessage(ByteBuffer(bytes: [0x0A, 0x00]))
            bodies[streamID] = body
            session.submitResponse(streamID: streamID, headers: headers, withBody: true)
        }
        answer.removeAll()
    }

    func sessionDidBeginHeaders(streamID: Int32) { fields[streamID] = [] }

    func sessionDidReceiveHeader(streamID: Int32, name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>) {
        fields[streamID, default: []].append((String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self)))
    }

    func sessionDidReceiveHeaders(streamID: Int32, endStream: Bool) {
        guard let received = fields.removeValue(forKey: streamID) else { return }
        if case .success = RequestHead.parse(received), deframers[streamID] == nil {
            deframers[streamID] = MessageDeframer(limit: 1 << 16)
            answer.append(streamID)
        }
    }

    func sessionDidReceiveData(streamID: Int32, bytes: UnsafeRawBufferPointer) {
        consumed.append((streamID, bytes.count))
        guard var deframer = deframers[streamID] else { return }
        deframer.append(bytes)
        while let message = try? deframer.next() { _ = message }
        deframers[streamID] = deframer
    }

    func sessionDidReceiveEndOfData(streamID: Int32) {
        try? deframers[streamID]?.finish()
    }

    func sessionDidCloseStream(streamID: Int32, errorCode: UInt32) {
        deframers[streamID] = nil
        bodies[streamID] = nil
    }

    func sessionReadOutbound(streamID: Int32, into buffer: UnsafeMutableRawBufferPointer) -> OutboundChunk {
        guard var body = bodies[streamID] else { return .end(0, trailers: nil) }
        let count = min(buffer.count, body.readableBytes)
        body.withUnsafeReadableBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: count) }
        body.moveReaderIndex(forwardBy: count)
        bodies[streamID] = body
        guard body.readableBytes == 0 else { return .bytes(count) }
        var trailers = HeaderBlock()
        trailers.add("grpc-status", "0")
        return .end(count, trailers: trailers)
    }

    func sessionDidSendEndOfStream(streamID: Int32) {}
    func sessionDidReceivePingAck() {}
    func sessionDidReceiveGoAway(lastStreamID: Int32, errorCode: UInt32) {}
}
