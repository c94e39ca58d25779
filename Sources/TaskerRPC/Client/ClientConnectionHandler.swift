import NIOConcurrencyHelpers
import NIOCore

/// Whether a client connection may take new calls; read from any thread.
final class ClientConnectionState: Sendable {
    private let state = NIOLockedValueBox((usable: true, reason: String?.none))
    var isUsable: Bool { state.withLockedValue { $0.usable } }
    /// Why the connection ended, when more is known than that it closed.
    var reason: String? { state.withLockedValue { $0.reason } }
    func markUnusable(because reason: String? = nil) {
        state.withLockedValue { state in
            state.usable = false
            state.reason = state.reason ?? reason
        }
    }
}

/// Runs client calls on one HTTP/2 connection: one nghttp2 client session, many streams, all
/// on the channel's event loop.
final class ClientConnectionHandler: ChannelDuplexHandler, NGHTTP2SessionDelegate {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum Event {
        case headers(Int32, fields: [(name: String, value: String)], endStream: Bool)
        case data(Int32)
        case endOfData(Int32)
        case closed(Int32, errorCode: UInt32)
    }

    let configuration: RPCClient.Configuration
    let connectionState = ClientConnectionState()
    private let authority: String
    private var session: NGHTTP2Session!
    private var context: ChannelHandlerContext!
    private var streams: [Int32: ClientStream] = [:]
    private var events: [Event] = []
    private var io = ConnectionIO()
    private var heardFromServer = false

    init(configuration: RPCClient.Configuration, authority: String) {
        self.configuration = configuration
        self.authority = authority
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        session = NGHTTP2Session(role: .client, settings: configuration.http2, delegate: self)
        if context.channel.isActive { flush() }
    }

    func channelActive(context: ChannelHandlerContext) {
        flush()
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        failAll(RPCError(.unavailable, "the connection closed"))
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(RPCError(.unavailable, "the connection to the server was lost"))
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        // A TLS server answers a plaintext client with an alert record (0x15) where HTTP/2
        // would begin with its SETTINGS frame.
        if !heardFromServer, configuration.security == nil, bytes.readableBytesView.first == 0x15 {
            let reason = "the server answered in TLS, not plaintext HTTP/2: connect with TLS"
            connectionState.markUnusable(because: reason)
            failAll(RPCError(.unavailable, reason))
            context.close(promise: nil)
            return
        }
        heardFromServer = true
        if io.receive(bytes, session: session) != nil {
            connectionState.markUnusable()
        }
        processEvents()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        io.isReading = false
        flush()
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { flush() }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A TLS alert after the handshake (a server refusing the client's certificate, under
        // TLS 1.3) says more than the lost connection that follows.
        let reason = configuration.security?.describe(error, server: authority)
        connectionState.markUnusable(because: reason)
        if let reason { failAll(RPCError(.unavailable, reason)) }
        context.close(promise: nil)
    }

    // MARK: nghttp2 callbacks

    func sessionDidBeginHeaders(streamID: Int32) {
        streams[streamID]?.fields.removeAll(keepingCapacity: true)
    }

    func sessionDidReceiveHeader(streamID: Int32, name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>) {
        streams[streamID]?.fields.append((String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self)))
    }

    func sessionDidReceiveHeaders(streamID: Int32, endStream: Bool) {
        guard let stream = streams[streamID] else { return }
        events.append(.headers(streamID, fields: stream.fields, endStream: endStream))
        stream.fields = []
    }

    func sessionDidReceiveData(streamID: Int32, bytes: UnsafeRawBufferPointer) {
        guard let stream = streams[streamID] else { return }
        stream.flow.unconsumedBytes += bytes.count
        if stream.state.inbound != .finished { stream.deframer.append(bytes) }
        events.append(.data(streamID))
    }

    func sessionDidReceiveEndOfData(streamID: Int32) {
        events.append(.endOfData(streamID))
    }

    func sessionDidCloseStream(streamID: Int32, errorCode: UInt32) {
        events.append(.closed(streamID, errorCode: errorCode))
    }

    func sessionReadOutbound(streamID: Int32, into buffer: UnsafeMutableRawBufferPointer) -> OutboundChunk {
        guard let stream = streams[streamID] else { return .end(0, trailers: nil) }
        return stream.flow.readOutbound(into: buffer)
    }

    func sessionDidSendEndOfStream(streamID: Int32) {}

    func sessionDidReceivePingAck() {}

    func sessionDidReceiveGoAway(lastStreamID: Int32, errorCode: UInt32) {
        connectionState.markUnusable()
    }

    // MARK: Acting on what nghttp2 reported

    private func processEvents() {
        var index = 0
        while index < events.count {
            let event = events[index]
            index += 1
            switch event {
            case .headers(let id, let fields, let endStream):
                if let stream = streams[id] { receiveHeaders(stream, fields: fields, endStream: endStream) }
            case .data(let id):
                if let stream = streams[id] { deliverMessages(stream) }
            case .endOfData(let id):
                if let stream = streams[id], stream.state.inbound != .finished {
                    complete(stream, Status(.internal, "the server ended the stream without a status"), Metadata())
                }
            case .closed(let id, let errorCode):
                guard let stream = streams.removeValue(forKey: id) else { continue }
                stream.deadlineTimer?.cancel()
                session.consume(streamID: id, count: stream.flow.takeAllWindow())
                complete(stream, Self.status(forReset: errorCode), Metadata())
            }
        }
        events.removeAll(keepingCapacity: true)
        if !connectionState.isUsable, streams.isEmpty, !io.closeAfterFlush {
            session.submitGoAway(error: .noError)
            io.closeAfterFlush = true
        }
        scheduleFlush()
    }

    private static func status(forReset errorCode: UInt32) -> Status {
        switch HTTP2ErrorCode(rawValue: errorCode) {
        case .noError?:
            Status(.internal, "the server closed the stream without a status")
        case .refusedStream?:
            Status(.unavailable, "the server refused the stream (it is shutting down or at its stream limit)")
        case .cancel?:
            Status(.cancelled, "the server cancelled the call")
        case .enhanceYourCalm?:
            Status(.resourceExhausted, "the server asked to slow down (ENHANCE_YOUR_CALM)")
        default:
            Status(.internal, "the server reset the stream with HTTP/2 error \(errorCode)")
        }
    }

    private func receiveHeaders(_ stream: ClientStream, fields: [(name: String, value: String)], endStream: Bool) {
        let kind: ClientStreamStateMachine.HeadersKind
        do {
            kind = try stream.state.receiveHeaders(endStream: endStream)
        } catch {
            abort(stream, Status(.internal, "the server sent response headers that do not end the stream"))
            return
        }
        var metadata = Metadata()
        var httpStatus: Int?
        var contentType: String?
        var grpcStatus: StatusCode?
        var grpcMessage = ""
        for (name, value) in fields {
            switch name {
            case ":status": httpStatus = Int(value)
            case "content-type": contentType = value
            case "grpc-status": grpcStatus = StatusCode(headerValue: value)
            case "grpc-message": grpcMessage = PercentEncoding.decode(value)
            default: _ = metadata.addReceived(name: name, value: value)
            }
        }
        if kind != .trailers {
            if let httpStatus, httpStatus != 200 {
                let code = grpcStatus ?? StatusCode(httpStatus: httpStatus)
                let message = grpcMessage.isEmpty ? "the server answered HTTP \(httpStatus)" : grpcMessage
                abort(stream, Status(code, message), metadata: metadata)
                return
            }
            if httpStatus == nil || contentType.map(RequestHead.isGRPCContentType) != true {
                abort(stream, Status(.unknown, "the response is not gRPC (content-type '\(contentType ?? "")')"))
                return
            }
        }
        switch kind {
        case .initial:
            stream.deliverHeaders(metadata)
        case .trailersOnly, .trailers:
            if kind == .trailersOnly { stream.deliverHeaders(Metadata()) }
            var status = Status(grpcStatus ?? .internal, grpcStatus == nil ? "the server sent no grpc-status" : grpcMessage)
            if status.code == .ok {
                do {
                    try stream.deframer.finish()
                } catch {
                    status = error.status
                }
            }
            finish(stream, status, metadata)
        }
    }

    private func deliverMessages(_ stream: ClientStream) {
        guard stream.state.inbound != .finished else {
            returnWindow(stream)
            return
        }
        do {
            while let message = try stream.deframer.next() {
                try stream.state.receiveMessage()
                if !stream.responses.yield(message) { stream.flow.windowHeld = true }
            }
        } catch let failure as MessageDeframer.Failure {
            abort(stream, failure.status)
            return
        } catch {
            abort(stream, Status(.internal, "the server sent a message before its response headers"))
            return
        }
        returnWindow(stream)
    }

    private func returnWindow(_ stream: ClientStream) {
        guard stream.id > 0 else { return }
        session.consume(streamID: stream.id, count: stream.flow.takeReturnableWindow())
    }

    func releaseWindow(_ stream: ClientStream) {
        // The queue may have filled again before this ran; then it stays held.
        guard !stream.responses.isThrottled else { return }
        stream.flow.windowHeld = false
        returnWindow(stream)
        scheduleFlush()
    }

    /// Ends a call from this side with a reset: deadline, cancel, or a broken response.
    private func abort(_ stream: ClientStream, _ status: Status, metadata: Metadata = Metadata()) {
        guard stream.state.finish() else { return }
        if stream.id > 0, streams[stream.id] != nil { session.submitReset(streamID: stream.id, error: .cancel) }
        settle(stream, status, metadata)
    }

    /// The call ended with a status the server sent.
    private func finish(_ stream: ClientStream, _ status: Status, _ metadata: Metadata) {
        settle(stream, status, metadata)
    }

    /// The stream closed; if no status arrived, `status` explains why.
    private func complete(_ stream: ClientStream, _ status: Status, _ metadata: Metadata) {
        guard stream.state.finish() else { return }
        settle(stream, status, metadata)
    }

    private func settle(_ stream: ClientStream, _ status: Status, _ metadata: Metadata) {
        stream.deadlineTimer?.cancel()
        let error = status.code == .ok ? nil : RPCError(status: status, metadata: metadata)
        stream.responses.finish(throwing: error, discardingBuffered: false)
        stream.flow.failWriter(error ?? RPCError(.failedPrecondition, "the call has already ended"))
        stream.deliverHeaders(Metadata())
        stream.resultPromise.succeed(CallResult(status: status, trailingMetadata: metadata))
    }

    private func failAll(_ error: RPCError) {
        connectionState.markUnusable()
        let open = streams.values
        streams.removeAll()
        for stream in open { complete(stream, error.status, Metadata()) }
    }

    // MARK: Calls from the client API (on the event loop)

    /// Whether new streams can be opened: the channel may have closed (and this handler left
    /// the pipeline) after the client picked the connection but before the call reached here.
    var canOpenStreams: Bool {
        context != nil && connectionState.isUsable && context.channel.isActive
    }

    func makeStream(path: String) -> ClientStream {
        let stream = ClientStream(
            path: path, receiveLimit: configuration.maxReceiveMessageSize,
            sendBufferSize: configuration.streamSendBufferSize, loop: context.eventLoop, allocator: context.channel.allocator)
        let bound = NIOLoopBound((handler: self, stream: stream), eventLoop: context.eventLoop)
        stream.responses = InboundMessageQueue(highWater: configuration.streamReceiveBufferSize) {
            bound.eventLoop.execute { bound.value.handler.releaseWindow(bound.value.stream) }
        }
        return stream
    }

    /// Opens the stream; `messages` go out with it and `endRequest` closes the request side.
    func open(_ stream: ClientStream, metadata: Metadata, options: CallOptions, messages: [ByteBuffer], endRequest: Bool) {
        guard connectionState.isUsable, context != nil, context.channel.isActive else {
            complete(stream, Status(.unavailable, "the connection is closing"), Metadata())
            return
        }
        var headers = HeaderBlock()
        headers.add(":method", "POST")
        headers.add(":scheme", "http")
        headers.add(":path", stream.path)
        headers.add(":authority", authority)
        headers.add("content-type", "application/grpc")
        headers.add("te", "trailers")
        headers.add("user-agent", "tasker-rpc-swift/1.0")
        if let timeout = options.timeout {
            headers.add("grpc-timeout", GRPCTimeout.encode(nanoseconds: max(timeout.nanoseconds, 1)))
        }
        headers.add(metadata)
        for message in messages { _ = stream.flow.enqueue(message) }
        if endRequest {
            _ = try? stream.state.closeRequest()
            stream.flow.outbound.end(trailers: nil)
        }
        let id = session.submitRequest(headers: headers)
        guard id > 0 else {
            complete(stream, Status(.unavailable, "could not open a stream: \(NGHTTP2Error(code: id))"), Metadata())
            return
        }
        stream.id = id
        streams[id] = stream
        let loop = NIOLoopBound(self, eventLoop: context.eventLoop)
        if let timeout = options.timeout {
            stream.deadlineTimer = context.eventLoop.scheduleTask(in: timeout) {
                let handler = loop.value
                if let stream = handler.streams[id] {
                    handler.abort(stream, Status(.deadlineExceeded, "deadline of \(Double(timeout.nanoseconds) / 1e6) ms exceeded"))
                    handler.scheduleFlush()
                }
            }
        }
        scheduleFlush()
    }

    /// Queues a request message; false means wait for room.
    func send(_ stream: ClientStream, message: ByteBuffer) throws -> Bool {
        do {
            try stream.state.sendMessage()
        } catch .callFinished {
            throw RPCError(.failedPrecondition, "the call has already ended")
        } catch {
            throw RPCError(.failedPrecondition, "the request stream was already closed")
        }
        let hasRoom = stream.flow.enqueue(message)
        resume(stream)
        return hasRoom
    }

    func waitUntilWritable(_ stream: ClientStream, continuation: UnsafeContinuation<Void, any Error>) {
        if stream.state.inbound == .finished {
            continuation.resume(throwing: RPCError(.failedPrecondition, "the call has already ended"))
        } else {
            stream.flow.waitUntilWritable(continuation)
        }
    }

    func closeRequest(_ stream: ClientStream) {
        guard (try? stream.state.closeRequest()) != nil else { return }
        stream.flow.outbound.end(trailers: nil)
        resume(stream)
    }

    func cancel(_ stream: ClientStream) {
        abort(stream, Status(.cancelled, "the call was cancelled by the client"))
        scheduleFlush()
    }

    private func resume(_ stream: ClientStream) {
        if stream.flow.outbound.isDeferred, stream.id > 0 {
            stream.flow.outbound.isDeferred = false
            session.resumeData(streamID: stream.id)
        }
        scheduleFlush()
    }

    /// Closes the connection once the open calls have ended.
    func closeWhenIdle() {
        connectionState.markUnusable()
        processEvents()
    }

    // MARK: Output

    private func scheduleFlush() {
        guard let context else { return }
        io.scheduleFlush(on: context.eventLoop) { [self] in flush() }
    }

    private func flush() {
        guard let context else { return }
        io.flush(session: session, context: context) { self.processEvents() }
    }
}
