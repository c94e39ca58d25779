import Logging
import NIOCore

/// Serves gRPC calls on one HTTP/2 connection. It owns the connection's nghttp2 session and
/// every stream on it; all of its state lives on the channel's event loop.
final class ServerConnectionHandler: ChannelDuplexHandler, NGHTTP2SessionDelegate {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum Event {
        case headers(Int32, fields: [(name: String, value: String)], endStream: Bool)
        case data(Int32)
        case endOfData(Int32)
        case closed(Int32, errorCode: UInt32)
        case statusSent(Int32)
        case goAway
    }

    private let configuration: RPCServer.Configuration
    private let router: RPCRouter
    private let logger: Logger
    private var session: NGHTTP2Session!
    private var context: ChannelHandlerContext!
    private var executor: EventLoopTaskExecutor?
    private var streams: [Int32: ServerStream] = [:]
    private var events: [Event] = []
    private var io = ConnectionIO()
    private var keepalive: KeepaliveTimer?
    private var draining = false
    private var goAwaySent = false
    private var graceTimer: Scheduled<Void>?

    init(configuration: RPCServer.Configuration, router: RPCRouter, logger: Logger) {
        self.configuration = configuration
        self.router = router
        self.logger = logger
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if configuration.handlersRunOnEventLoop {
            executor = EventLoopTaskExecutor(loop: context.eventLoop)
        }
        session = NGHTTP2Session(role: .server, settings: configuration.http2, delegate: self)
        if let interval = configuration.keepaliveInterval {
            keepalive = KeepaliveTimer(interval: interval, timeout: configuration.keepaliveTimeout)
        }
        if context.channel.isActive {
            keepalive?.start(on: context.eventLoop) { [weak self] in self?.keepaliveFired() }
            flush()
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        keepalive?.start(on: context.eventLoop) { [weak self] in self?.keepaliveFired() }
        flush()
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        tearDown(reason: RPCError(.unavailable, "the connection closed"))
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        tearDown(reason: RPCError(.cancelled, "the client went away"))
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        keepalive?.sawActivity()
        if let error = io.receive(bytes, session: session) {
            logger.debug("closing connection on HTTP/2 error", metadata: ["error": "\(error)"])
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
        logger.debug("connection error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is GracefulShutdownEvent {
            beginGracefulShutdown()
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    // MARK: nghttp2 callbacks (record only; acted on in processEvents)

    func sessionDidBeginHeaders(streamID: Int32) {
        if streams[streamID] == nil {
            streams[streamID] = ServerStream(
                id: streamID, receiveLimit: configuration.maxReceiveMessageSize,
                sendBufferSize: configuration.streamSendBufferSize, allocator: context.channel.allocator)
        }
    }

    func sessionDidReceiveHeader(streamID: Int32, name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>) {
        guard let stream = streams[streamID], !stream.headersReceived else { return }
        stream.requestFields.append((String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self)))
    }

    func sessionDidReceiveHeaders(streamID: Int32, endStream: Bool) {
        guard let stream = streams[streamID] else { return }
        events.append(.headers(streamID, fields: stream.requestFields, endStream: endStream))
        stream.requestFields = []
        stream.headersReceived = true
    }

    func sessionDidReceiveData(streamID: Int32, bytes: UnsafeRawBufferPointer) {
        guard let stream = streams[streamID] else { return }
        stream.flow.unconsumedBytes += bytes.count
        // Input after the status went out is unwanted: only its window is returned.
        if stream.state.outbound != .finished, !stream.state.isClosed {
            stream.deframer.append(bytes)
        }
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

    func sessionDidSendEndOfStream(streamID: Int32) {
        events.append(.statusSent(streamID))
    }

    func sessionDidReceivePingAck() {
        keepalive?.pingAcknowledged()
        if draining, !goAwaySent { sendFinalGoAway() }
    }

    func sessionDidReceiveGoAway(lastStreamID: Int32, errorCode: UInt32) {
        events.append(.goAway)
    }

    // MARK: Acting on what nghttp2 reported

    private func processEvents() {
        var index = 0
        while index < events.count {
            let event = events[index]
            index += 1
            switch event {
            case .headers(let id, let fields, let endStream):
                guard let stream = streams[id] else { continue }
                if !stream.started {
                    start(stream, fields: fields, endStream: endStream)
                } else if endStream {
                    receiveEnd(stream)
                }
            case .data(let id):
                if let stream = streams[id] { deliverMessages(stream) }
            case .endOfData(let id):
                if let stream = streams[id] { receiveEnd(stream) }
            case .closed(let id, let errorCode):
                if let stream = streams.removeValue(forKey: id) { closed(stream, errorCode: errorCode) }
            case .statusSent(let id):
                if let stream = streams[id], stream.state.needsResetAfterStatus {
                    session.submitReset(streamID: id, error: .noError)
                }
            case .goAway:
                draining = true
            }
        }
        events.removeAll(keepingCapacity: true)
        if draining, goAwaySent, streams.isEmpty { io.closeAfterFlush = true }
        scheduleFlush()
    }

    private func start(_ stream: ServerStream, fields: [(name: String, value: String)], endStream: Bool) {
        stream.started = true
        let head: RequestHead
        switch RequestHead.parse(fields) {
        case .success(let parsed):
            head = parsed
        case .failure(.http(let status, let reason)):
            reject(stream, httpStatus: status, reason)
            return
        case .failure(.grpc(let reason)):
            reject(stream, httpStatus: 200, reason)
            return
        }
        guard let method = router.methods[head.path] else {
            reject(stream, httpStatus: 200, router.unimplemented(path: head.path))
            RPCMetrics.served(method: nil, code: .unimplemented, after: nil)
            return
        }
        stream.method = method
        if endStream { try? stream.state.receiveEnd() }

        var deadline: NIODeadline?
        if let nanos = head.timeoutNanoseconds {
            deadline = .now() + .nanoseconds(nanos)
            let id = stream.id
            stream.deadlineTimer = context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(nanos)) { [weak self] in
                self?.deadlineExpired(streamID: id, after: nanos)
            }
        }
        let serverContext = ServerContext(
            path: head.path, metadata: head.metadata, deadline: deadline,
            peer: context.channel.remoteAddress?.description ?? "unknown")
        stream.call = ServerCall(
            context: serverContext, streamID: stream.id,
            connection: NIOLoopBound(self, eventLoop: context.eventLoop))

        if method.kind.takesSingleRequest {
            if endStream { receiveEnd(stream) }
        } else {
            let id = stream.id
            let loop = NIOLoopBound(self, eventLoop: context.eventLoop)
            stream.requests = InboundMessageQueue(highWater: configuration.streamReceiveBufferSize) {
                loop.eventLoop.execute { loop.value.releaseWindow(streamID: id) }
            }
            run(stream, source: .stream(stream.requests!))
            if endStream { stream.requests?.finish() }
        }
    }

    private func reject(_ stream: ServerStream, httpStatus: Int, _ status: Status) {
        _ = try? stream.state.sendStatus()
        var headers = HeaderBlock()
        headers.add(":status", String(httpStatus))
        headers.add("content-type", "application/grpc")
        headers.add("grpc-status", String(status.code.rawValue))
        if !status.message.isEmpty { headers.add("grpc-message", PercentEncoding.encode(status.sentMessage)) }
        if status.code == .unimplemented { headers.add("grpc-accept-encoding", "identity") }
        session.submitResponse(streamID: stream.id, headers: headers, withBody: false)
    }

    private func run(_ stream: ServerStream, source: RequestSource) {
        guard let method = stream.method, let call = stream.call else { return }
        let gate = configuration.gate
        let body: @Sendable () async -> Void = {
            let started = ContinuousClock.now
            func end(_ last: ByteBuffer?, _ status: Status, _ trailers: Metadata) {
                call.finish(lastMessage: last, status: status, trailers: trailers)
                RPCMetrics.served(method: call.context.path, code: status.code, after: ContinuousClock.now - started)
            }
            do {
                if let gate { call.context.caller = try await gate.admit(call.context) }
                let last = try await method.run(source, call.context, call)
                end(last, .ok, call.context.trailingMetadata)
            } catch let error as RPCError {
                var trailers = call.context.trailingMetadata
                for entry in error.metadata { trailers.add(entry.key, entry.value) }
                end(nil, error.status, trailers)
            } catch is CancellationError {
                end(nil, Status(.cancelled, "the call was cancelled"), Metadata())
            } catch {
                end(nil, Status(.unknown, "handler failed: \(error)"), Metadata())
            }
        }
        if let executor {
            stream.task = Task(executorPreference: executor, operation: body)
        } else {
            stream.task = Task(operation: body)
        }
    }

    private func deliverMessages(_ stream: ServerStream) {
        guard stream.state.outbound != .finished, !stream.state.isClosed, stream.method != nil else {
            returnWindow(stream)
            return
        }
        do {
            while let message = try stream.deframer.next() {
                try stream.state.receiveMessage()
                if let requests = stream.requests {
                    if !requests.yield(message) { stream.flow.windowHeld = true }
                } else if stream.singleRequest == nil {
                    stream.singleRequest = message
                } else {
                    abort(stream, RPCError(.internal, "a unary request carried more than one message"))
                    return
                }
            }
        } catch let failure as MessageDeframer.Failure {
            abort(stream, RPCError(status: failure.status))
            return
        } catch {
            abort(stream, RPCError(.internal, "request data after the end of the request"))
            return
        }
        returnWindow(stream)
    }

    private func receiveEnd(_ stream: ServerStream) {
        guard stream.state.outbound != .finished else { return }
        do {
            try stream.deframer.finish()
        } catch {
            abort(stream, RPCError(status: error.status))
            return
        }
        if stream.state.inbound == .open { try? stream.state.receiveEnd() }
        if let requests = stream.requests {
            requests.finish()
        } else if stream.method != nil, stream.task == nil {
            guard let request = stream.singleRequest else {
                abort(stream, RPCError(.internal, "a unary request ended without a message"))
                return
            }
            stream.singleRequest = nil
            run(stream, source: .single(request))
        }
    }

    private func returnWindow(_ stream: ServerStream) {
        session.consume(streamID: stream.id, count: stream.flow.takeReturnableWindow())
    }

    func releaseWindow(streamID: Int32) {
        // The queue may have filled again before this ran; then it stays held.
        guard let stream = streams[streamID], stream.requests?.isThrottled != true else { return }
        stream.flow.windowHeld = false
        returnWindow(stream)
        scheduleFlush()
    }

    /// Ends a call from the server's side: the handler is cancelled and the client gets `error`.
    private func abort(_ stream: ServerStream, _ error: RPCError) {
        stream.abortedWith = error
        stream.task?.cancel()
        stream.requests?.finish(throwing: error)
        stream.flow.failWriter(error)
        sendStatus(stream, error.status, trailers: Metadata())
    }

    private func deadlineExpired(streamID: Int32, after nanos: Int64) {
        guard let stream = streams[streamID], stream.state.outbound != .finished else { return }
        abort(stream, RPCError(.deadlineExceeded, "deadline of \(Double(nanos) / 1e6) ms exceeded"))
        scheduleFlush()
    }

    private func closed(_ stream: ServerStream, errorCode: UInt32) {
        stream.deadlineTimer?.cancel()
        session.consume(streamID: stream.id, count: stream.flow.takeAllWindow())
        let finishedNormally = stream.state.outbound == .finished
        stream.state.close()
        guard !finishedNormally else {
            stream.requests?.finish(throwing: RPCError(.cancelled, "the call already ended"))
            return
        }
        let reason = stream.abortedWith ?? RPCError(.cancelled, "the client cancelled the call")
        stream.task?.cancel()
        stream.requests?.finish(throwing: reason)
        stream.flow.failWriter(reason)
    }

    private func tearDown(reason: RPCError) {
        keepalive?.stop()
        graceTimer?.cancel()
        for stream in streams.values {
            stream.deadlineTimer?.cancel()
            stream.state.close()
            stream.task?.cancel()
            stream.requests?.finish(throwing: reason)
            stream.flow.failWriter(reason)
        }
        streams.removeAll()
    }

    // MARK: Calls into the connection from handler tasks (on the event loop)

    /// Queues a response message. Returns false when the caller should wait for room.
    func enqueue(message: ByteBuffer, streamID: Int32) throws -> Bool {
        guard let stream = streams[streamID] else { throw RPCError(.cancelled, "the call has ended") }
        if let aborted = stream.abortedWith { throw aborted }
        let needsHeaders: Bool
        do {
            needsHeaders = try stream.state.sendMessage()
        } catch {
            throw RPCError(.failedPrecondition, "the call has already sent its status")
        }
        let hasRoom = stream.flow.enqueue(message)
        if needsHeaders {
            sendResponseHeaders(stream)
        } else {
            resumeData(stream)
        }
        scheduleFlush()
        return hasRoom
    }

    func waitUntilWritable(streamID: Int32, continuation: UnsafeContinuation<Void, any Error>) {
        guard let stream = streams[streamID] else {
            continuation.resume(throwing: RPCError(.cancelled, "the call has ended"))
            return
        }
        if let aborted = stream.abortedWith {
            continuation.resume(throwing: aborted)
        } else {
            stream.flow.waitUntilWritable(continuation)
        }
    }

    func finish(streamID: Int32, lastMessage: ByteBuffer?, status: Status, trailers: Metadata) {
        guard let stream = streams[streamID], stream.state.outbound != .finished, !stream.state.isClosed else { return }
        if let lastMessage, status.code == .ok {
            let needsHeaders = (try? stream.state.sendMessage()) == true
            _ = stream.flow.enqueue(lastMessage)
            if needsHeaders { sendResponseHeaders(stream) }
        }
        sendStatus(stream, status, trailers: trailers)
        scheduleFlush()
    }

    private func sendResponseHeaders(_ stream: ServerStream) {
        var headers = HeaderBlock()
        headers.add(":status", "200")
        headers.add("content-type", "application/grpc")
        if let call = stream.call { headers.add(call.context.initialMetadata) }
        session.submitResponse(streamID: stream.id, headers: headers, withBody: true)
    }

    private func sendStatus(_ stream: ServerStream, _ status: Status, trailers: Metadata) {
        stream.deadlineTimer?.cancel()
        guard let shape = try? stream.state.sendStatus() else { return }
        var block = HeaderBlock()
        if shape == .trailersOnly {
            block.add(":status", "200")
            block.add("content-type", "application/grpc")
            if let call = stream.call { block.add(call.context.initialMetadata) }
        }
        block.add("grpc-status", String(status.code.rawValue))
        if !status.message.isEmpty { block.add("grpc-message", PercentEncoding.encode(status.sentMessage)) }
        block.add(trailers)
        switch shape {
        case .trailersOnly:
            session.submitResponse(streamID: stream.id, headers: block, withBody: false)
        case .trailers:
            stream.flow.outbound.end(trailers: block)
            resumeData(stream)
        }
        if stream.state.inbound == .open {
            stream.requests?.finish(throwing: RPCError(.cancelled, "the call already ended"))
        }
    }

    // MARK: Output

    /// Wakes nghttp2 for a stream whose body source had run dry.
    private func resumeData(_ stream: ServerStream) {
        if stream.flow.outbound.isDeferred {
            stream.flow.outbound.isDeferred = false
            session.resumeData(streamID: stream.id)
        }
    }

    private func scheduleFlush() {
        guard let context else { return }
        io.scheduleFlush(on: context.eventLoop) { [self] in flush() }
    }

    private func flush() {
        guard let context else { return }
        io.flush(session: session, context: context) { self.processEvents() }
    }

    // MARK: Keepalive and shutdown

    private func keepaliveFired() {
        guard let keepalive else { return }
        switch keepalive.fire() {
        case .sendPing:
            session.submitPing()
            flush()
        case .idleTimeout:
            logger.debug("closing connection: keepalive ping unanswered")
            session.submitGoAway(error: .noError, debug: "keepalive timeout")
            io.closeAfterFlush = true
            flush()
        case .nothing:
            break
        }
    }

    /// GOAWAY with the largest id first (no new streams, please), then after a round trip the
    /// real last id; in-flight calls finish, then the connection closes.
    private func beginGracefulShutdown() {
        guard !draining else { return }
        draining = true
        session.submitShutdownNotice()
        session.submitPing()
        flush()
        graceTimer = context.eventLoop.assumeIsolated().scheduleTask(in: configuration.shutdownGracePeriod) { [weak self] in
            guard let self else { return }
            if !self.goAwaySent { self.sendFinalGoAway() }
            self.logger.debug("closing connection: shutdown grace period over", metadata: ["open-streams": "\(self.streams.count)"])
            self.context?.close(promise: nil)
        }
    }

    private func sendFinalGoAway() {
        goAwaySent = true
        session.submitGoAway(error: .noError)
        if streams.isEmpty { io.closeAfterFlush = true }
        flush()
    }
}

/// Sent down a server's child channels to start a graceful shutdown.
struct GracefulShutdownEvent: Sendable {}
