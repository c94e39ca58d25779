import CNGHTTP2
import NIOCore

/// What a stream's outbound source hands to nghttp2 when asked for DATA.
enum OutboundChunk {
    /// `count` bytes were copied; more may follow later.
    case bytes(Int)
    /// Nothing to send now; the stream is resumed with `NGHTTP2Session.resumeData`.
    case deferred
    /// `count` bytes were copied and the body is complete; `trailers` end the stream.
    case end(Int, trailers: HeaderBlock?)
}

/// Receives what nghttp2 parses and asks for outbound bytes. Every method is called from inside
/// `nghttp2_session_mem_recv` / `mem_send`, so none of them may call back into the session:
/// they record what happened and the owner acts once the session call has returned.
protocol NGHTTP2SessionDelegate: AnyObject {
    func sessionDidBeginHeaders(streamID: Int32)
    func sessionDidReceiveHeader(streamID: Int32, name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>)
    func sessionDidReceiveHeaders(streamID: Int32, endStream: Bool)
    func sessionDidReceiveData(streamID: Int32, bytes: UnsafeRawBufferPointer)
    func sessionDidReceiveEndOfData(streamID: Int32)
    func sessionDidCloseStream(streamID: Int32, errorCode: UInt32)
    func sessionReadOutbound(streamID: Int32, into buffer: UnsafeMutableRawBufferPointer) -> OutboundChunk
    func sessionDidSendEndOfStream(streamID: Int32)
    func sessionDidReceivePingAck()
    func sessionDidReceiveGoAway(lastStreamID: Int32, errorCode: UInt32)
}

/// HTTP/2 error codes used by the transport (RFC 9113 §7).
enum HTTP2ErrorCode: UInt32 {
    case noError = 0x0
    case protocolError = 0x1
    case internalError = 0x2
    case flowControlError = 0x3
    case refusedStream = 0x7
    case cancel = 0x8
    case enhanceYourCalm = 0xb
}

struct NGHTTP2Error: Error, CustomStringConvertible {
    let code: Int32
    var description: String { String(cString: nghttp2_strerror(code)) }
    var isFatal: Bool { code < NGHTTP2_ERR_FATAL.rawValue }
}

/// Settings this side announces in its first SETTINGS frame.
struct HTTP2Settings: Sendable {
    var maxConcurrentStreams: UInt32 = 256
    var initialStreamWindow: UInt32 = 1 << 20
    var connectionWindow: Int32 = 8 << 20
    var maxFrameSize: UInt32 = 1 << 14
    var maxHeaderListSize: UInt32 = 16 << 10
}

/// One nghttp2 session, confined to the event loop of its connection. Input goes in through
/// `receive`, output comes out through `drainOutput`; nghttp2 itself does no I/O.
final class NGHTTP2Session {
    enum Role { case server, client }

    private let session: OpaquePointer
    unowned(unsafe) var delegate: NGHTTP2SessionDelegate

    init(role: Role, settings: HTTP2Settings, delegate: NGHTTP2SessionDelegate) {
        self.delegate = delegate
        var callbacks: OpaquePointer?
        nghttp2_session_callbacks_new(&callbacks)
        defer { nghttp2_session_callbacks_del(callbacks) }
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, onBeginHeaders)
        nghttp2_session_callbacks_set_on_header_callback(callbacks, onHeader)
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, onFrameReceived)
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, onDataChunk)
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, onStreamClose)
        nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, onFrameSent)

        var option: OpaquePointer?
        nghttp2_option_new(&option)
        defer { nghttp2_option_del(option) }
        // Window updates follow what the application has taken, which is what bounds the
        // memory a peer can make this side hold.
        nghttp2_option_set_no_auto_window_update(option, 1)
        nghttp2_option_set_max_send_header_block_length(option, 64 << 10)

        var raw: OpaquePointer?
        switch role {
        case .server: nghttp2_session_server_new2(&raw, callbacks, nil, option)
        case .client: nghttp2_session_client_new2(&raw, callbacks, nil, option)
        }
        self.session = raw!
        nghttp2_session_set_user_data(session, Unmanaged.passUnretained(self).toOpaque())

        withUnsafeTemporaryAllocation(of: nghttp2_settings_entry.self, capacity: 4) { entries in
            entries[0] = .init(settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue), value: settings.maxConcurrentStreams)
            entries[1] = .init(settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), value: settings.initialStreamWindow)
            entries[2] = .init(settings_id: Int32(NGHTTP2_SETTINGS_MAX_FRAME_SIZE.rawValue), value: settings.maxFrameSize)
            entries[3] = .init(settings_id: Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue), value: settings.maxHeaderListSize)
            _ = nghttp2_submit_settings(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), entries.baseAddress, 4)
        }
        nghttp2_session_set_local_window_size(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, settings.connectionWindow)
    }

    deinit {
        nghttp2_session_del(session)
    }

    // MARK: Input and output

    /// Feeds bytes read from the socket. A thrown error is fatal for the connection.
    func receive(_ bytes: UnsafeRawBufferPointer) throws(NGHTTP2Error) {
        guard let base = bytes.baseAddress else { return }
        let result = nghttp2_session_mem_recv(session, base.assumingMemoryBound(to: UInt8.self), bytes.count)
        if result < 0 { throw NGHTTP2Error(code: Int32(result)) }
    }

    /// Appends everything nghttp2 has to send into `buffer`, as far as `limit` bytes allow.
    func drainOutput(into buffer: inout ByteBuffer, limit: Int) throws(NGHTTP2Error) {
        while buffer.readableBytes < limit {
            var data: UnsafePointer<UInt8>?
            let count = nghttp2_session_mem_send(session, &data)
            if count < 0 { throw NGHTTP2Error(code: Int32(count)) }
            guard count > 0, let data else { return }
            buffer.writeBytes(UnsafeRawBufferPointer(start: data, count: count))
        }
    }

    /// False once both sides are done with the connection (GOAWAY exchanged, no open streams).
    var isAlive: Bool {
        nghttp2_session_want_read(session) != 0 || nghttp2_session_want_write(session) != 0
    }

    var wantsWrite: Bool { nghttp2_session_want_write(session) != 0 }

    var lastProcessedStreamID: Int32 { nghttp2_session_get_last_proc_stream_id(session) }

    // MARK: Submitting frames

    /// Response HEADERS; `withBody` attaches the outbound source, otherwise the HEADERS end the
    /// stream (a Trailers-Only response).
    @discardableResult
    func submitResponse(streamID: Int32, headers: HeaderBlock, withBody: Bool) -> Int32 {
        headers.withNameValuePairs { nva, count in
            if withBody {
                var provider = Self.dataProvider
                return nghttp2_submit_response(session, streamID, nva, count, &provider)
            }
            return nghttp2_submit_response(session, streamID, nva, count, nil)
        }
    }

    /// Opens a client stream; returns its id, or a negative nghttp2 error.
    func submitRequest(headers: HeaderBlock) -> Int32 {
        headers.withNameValuePairs { nva, count in
            var provider = Self.dataProvider
            return nghttp2_submit_request(session, nil, nva, count, &provider, nil)
        }
    }

    func submitReset(streamID: Int32, error: HTTP2ErrorCode) {
        nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamID, error.rawValue)
    }

    /// Asks nghttp2 to call `sessionReadOutbound` again for a stream that returned `.deferred`.
    func resumeData(streamID: Int32) {
        nghttp2_session_resume_data(session, streamID)
    }

    /// Returns flow-control window for bytes the application has taken off a stream.
    func consume(streamID: Int32, count: Int) {
        guard count > 0 else { return }
        if nghttp2_session_consume(session, streamID, count) != 0 {
            // The stream is gone; the connection window still needs the bytes back.
            nghttp2_session_consume_connection(session, count)
        }
    }

    func submitPing() {
        nghttp2_submit_ping(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), nil)
    }

    /// The first step of a graceful shutdown: GOAWAY with the largest stream id.
    func submitShutdownNotice() {
        nghttp2_submit_shutdown_notice(session)
    }

    /// A GOAWAY naming the last stream this side will process; later streams are refused.
    func submitGoAway(error: HTTP2ErrorCode, lastStreamID: Int32? = nil, debug: String = "") {
        let last = lastStreamID ?? nghttp2_session_get_last_proc_stream_id(session)
        var debugBytes = Array(debug.utf8)
        debugBytes.withUnsafeMutableBufferPointer { bytes in
            _ = nghttp2_submit_goaway(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), last, error.rawValue, bytes.baseAddress, bytes.count)
        }
    }

    /// Stops reading: nghttp2 answers nothing more and drops input from now on.
    func terminate(error: HTTP2ErrorCode) {
        nghttp2_session_terminate_session(session, error.rawValue)
    }

    // MARK: Callbacks

    fileprivate static func from(_ userData: UnsafeMutableRawPointer?) -> NGHTTP2Session {
        Unmanaged<NGHTTP2Session>.fromOpaque(userData!).takeUnretainedValue()
    }

    private static let dataProvider = nghttp2_data_provider(source: nghttp2_data_source(ptr: nil), read_callback: readOutbound)
}

private let frameTypeData = UInt8(NGHTTP2_DATA.rawValue)
private let frameTypeHeaders = UInt8(NGHTTP2_HEADERS.rawValue)
private let frameTypePing = UInt8(NGHTTP2_PING.rawValue)
private let frameTypeGoAway = UInt8(NGHTTP2_GOAWAY.rawValue)
private let flagEndStream = UInt8(NGHTTP2_FLAG_END_STREAM.rawValue)
private let flagAck = UInt8(NGHTTP2_FLAG_ACK.rawValue)

private func onBeginHeaders(_: OpaquePointer?, _ frame: UnsafePointer<nghttp2_frame>?, _ userData: UnsafeMutableRawPointer?) -> Int32 {
    let frame = frame!.pointee
    NGHTTP2Session.from(userData).delegate.sessionDidBeginHeaders(streamID: frame.hd.stream_id)
    return 0
}

private func onHeader(
    _: OpaquePointer?, _ frame: UnsafePointer<nghttp2_frame>?,
    _ name: UnsafePointer<UInt8>?, _ nameLength: Int,
    _ value: UnsafePointer<UInt8>?, _ valueLength: Int,
    _ flags: UInt8, _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    NGHTTP2Session.from(userData).delegate.sessionDidReceiveHeader(
        streamID: frame!.pointee.hd.stream_id,
        name: UnsafeBufferPointer(start: name, count: nameLength),
        value: UnsafeBufferPointer(start: value, count: valueLength))
    return 0
}

private func onFrameReceived(_: OpaquePointer?, _ frame: UnsafePointer<nghttp2_frame>?, _ userData: UnsafeMutableRawPointer?) -> Int32 {
    let header = frame!.pointee.hd
    let delegate = NGHTTP2Session.from(userData).delegate
    switch header.type {
    case frameTypeHeaders:
        delegate.sessionDidReceiveHeaders(streamID: header.stream_id, endStream: header.flags & flagEndStream != 0)
    case frameTypeData where header.flags & flagEndStream != 0:
        delegate.sessionDidReceiveEndOfData(streamID: header.stream_id)
    case frameTypePing where header.flags & flagAck != 0:
        delegate.sessionDidReceivePingAck()
    case frameTypeGoAway:
        let goaway = frame!.pointee.goaway
        delegate.sessionDidReceiveGoAway(lastStreamID: goaway.last_stream_id, errorCode: goaway.error_code)
    default:
        break
    }
    return 0
}

private func onDataChunk(
    _: OpaquePointer?, _ flags: UInt8, _ streamID: Int32,
    _ data: UnsafePointer<UInt8>?, _ length: Int, _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    NGHTTP2Session.from(userData).delegate.sessionDidReceiveData(
        streamID: streamID, bytes: UnsafeRawBufferPointer(start: data, count: length))
    return 0
}

private func onStreamClose(_: OpaquePointer?, _ streamID: Int32, _ errorCode: UInt32, _ userData: UnsafeMutableRawPointer?) -> Int32 {
    NGHTTP2Session.from(userData).delegate.sessionDidCloseStream(streamID: streamID, errorCode: errorCode)
    return 0
}

private func onFrameSent(_: OpaquePointer?, _ frame: UnsafePointer<nghttp2_frame>?, _ userData: UnsafeMutableRawPointer?) -> Int32 {
    let header = frame!.pointee.hd
    if header.flags & flagEndStream != 0, header.type == frameTypeHeaders || header.type == frameTypeData {
        NGHTTP2Session.from(userData).delegate.sessionDidSendEndOfStream(streamID: header.stream_id)
    }
    return 0
}

private func readOutbound(
    _ session: OpaquePointer?, _ streamID: Int32, _ buffer: UnsafeMutablePointer<UInt8>?, _ length: Int,
    _ flags: UnsafeMutablePointer<UInt32>?, _: UnsafeMutablePointer<nghttp2_data_source>?,
    _ userData: UnsafeMutableRawPointer?
) -> Int {
    let owner = NGHTTP2Session.from(userData)
    switch owner.delegate.sessionReadOutbound(streamID: streamID, into: UnsafeMutableRawBufferPointer(start: buffer, count: length)) {
    case .bytes(let count):
        return count
    case .deferred:
        return Int(NGHTTP2_ERR_DEFERRED.rawValue)
    case .end(let count, let trailers):
        if let trailers {
            flags!.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue | NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue
            let result = trailers.withNameValuePairs { nva, n in nghttp2_submit_trailer(session, streamID, nva, n) }
            if result != 0 { return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue) }
        } else {
            flags!.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
        }
        return count
    }
}
