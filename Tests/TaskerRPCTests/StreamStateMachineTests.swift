import Testing

@testable import TaskerRPC

@Suite struct ServerStreamStateMachineTests {
    @Test func unaryCallWithTrailers() throws {
        var state = ServerStreamStateMachine()
        try state.receiveMessage()
        try state.receiveEnd()
        #expect(state.inbound == .closed)
        #expect(try state.sendMessage() == true)
        #expect(try state.sendMessage() == false)
        #expect(state.outbound == .streaming)
        #expect(try state.sendStatus() == .trailers)
        #expect(state.outbound == .finished)
        #expect(!state.needsResetAfterStatus)
    }

    @Test func statusBeforeAnythingIsTrailersOnly() throws {
        var state = ServerStreamStateMachine(requestEndsStream: true)
        #expect(state.inbound == .closed)
        #expect(try state.sendStatus() == .trailersOnly)
    }

    @Test func explicitHeadersThenStatus() throws {
        var state = ServerStreamStateMachine()
        #expect(try state.sendHeaders() == true)
        #expect(try state.sendHeaders() == false)
        #expect(try state.sendStatus() == .trailers)
    }

    @Test func nothingIsSentAfterTheStatus() throws {
        var state = ServerStreamStateMachine()
        _ = try state.sendStatus()
        #expect(throws: ServerStreamStateMachine.Violation.alreadyFinished) { try state.sendMessage() }
        #expect(throws: ServerStreamStateMachine.Violation.alreadyFinished) { try state.sendHeaders() }
        #expect(throws: ServerStreamStateMachine.Violation.alreadyFinished) { try state.sendStatus() }
    }

    @Test func inputAfterEndOfStreamIsAViolation() throws {
        var state = ServerStreamStateMachine()
        try state.receiveEnd()
        #expect(throws: ServerStreamStateMachine.Violation.inboundAlreadyClosed) { try state.receiveMessage() }
        #expect(throws: ServerStreamStateMachine.Violation.inboundAlreadyClosed) { try state.receiveEnd() }
    }

    @Test func statusWhileTheClientStillSendsAsksForAReset() throws {
        var state = ServerStreamStateMachine()
        _ = try state.sendStatus()
        #expect(state.needsResetAfterStatus)
        state.close()
        #expect(!state.needsResetAfterStatus)
    }

    @Test func aClosedStreamRefusesEverything() {
        var state = ServerStreamStateMachine()
        state.close()
        #expect(state.isClosed)
        #expect(state.inbound == .closed)
        #expect(throws: ServerStreamStateMachine.Violation.streamClosed) { try state.receiveMessage() }
        #expect(throws: ServerStreamStateMachine.Violation.streamClosed) { try state.receiveEnd() }
        #expect(throws: ServerStreamStateMachine.Violation.streamClosed) { try state.sendMessage() }
        #expect(throws: ServerStreamStateMachine.Violation.streamClosed) { try state.sendStatus() }
    }
}

@Suite struct ClientStreamStateMachineTests {
    @Test func headersMessagesTrailers() throws {
        var state = ClientStreamStateMachine()
        try state.sendMessage()
        try state.closeRequest()
        #expect(state.outbound == .closed)
        #expect(try state.receiveHeaders(endStream: false) == .initial)
        try state.receiveMessage()
        #expect(try state.receiveHeaders(endStream: true) == .trailers)
        #expect(state.inbound == .finished)
    }

    @Test func trailersOnlyResponse() throws {
        var state = ClientStreamStateMachine()
        #expect(try state.receiveHeaders(endStream: true) == .trailersOnly)
        #expect(state.inbound == .finished)
    }

    @Test func messageBeforeHeadersIsAViolation() {
        var state = ClientStreamStateMachine()
        #expect(throws: ClientStreamStateMachine.Violation.messageBeforeHeaders) { try state.receiveMessage() }
    }

    @Test func secondHeadersMustEndTheStream() throws {
        var state = ClientStreamStateMachine()
        _ = try state.receiveHeaders(endStream: false)
        #expect(throws: ClientStreamStateMachine.Violation.headersWithoutEndStream) {
            try state.receiveHeaders(endStream: false)
        }
    }

    @Test func nothingMovesAfterTheCallFinished() throws {
        var state = ClientStreamStateMachine()
        _ = try state.receiveHeaders(endStream: true)
        #expect(throws: ClientStreamStateMachine.Violation.callFinished) { try state.sendMessage() }
        #expect(throws: ClientStreamStateMachine.Violation.callFinished) { try state.closeRequest() }
        #expect(throws: ClientStreamStateMachine.Violation.callFinished) { try state.receiveMessage() }
        #expect(throws: ClientStreamStateMachine.Violation.callFinished) { try state.receiveHeaders(endStream: true) }
        let finishedAgain = state.finish()
        #expect(!finishedAgain)
    }

    @Test func sendingAfterClosingTheRequestIsRefused() throws {
        var state = ClientStreamStateMachine()
        try state.closeRequest()
        #expect(throws: ClientStreamStateMachine.Violation.requestAlreadyClosed) { try state.sendMessage() }
        #expect(throws: ClientStreamStateMachine.Violation.requestAlreadyClosed) { try state.closeRequest() }
    }

    @Test func finishEndsBothSidesOnce() {
        var state = ClientStreamStateMachine()
        let first = state.finish()
        #expect(first)
        #expect(state.inbound == .finished)
        #expect(state.outbound == .closed)
        let second = state.finish()
        #expect(!second)
    }
}
