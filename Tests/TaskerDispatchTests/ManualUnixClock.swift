import NIOConcurrencyHelpers
import TaskerDispatch

/// A clock that moves only when a test moves it: a sleeper wakes once the clock has passed its
/// deadline, and a cancelled one at once.
final class ManualUnixClock: UnixClock {
    private struct State {
        var now: UnixInstant
        var sleepers: [Int: (deadline: UnixInstant, continuation: CheckedContinuation<Void, any Error>)] = [:]
        /// Sleepers cancelled before they were put to sleep.
        var cancelled: Set<Int> = []
        var nextID = 0
    }

    private let state: NIOLockedValueBox<State>

    init(at seconds: Double) {
        state = NIOLockedValueBox(State(now: UnixInstant(seconds: seconds)))
    }

    var now: UnixInstant { state.withLockedValue { $0.now } }

    var minimumResolution: Duration { .zero }

    func sleep(until deadline: UnixInstant, tolerance: Duration?) async throws {
        let id = state.withLockedValue { state in
            defer { state.nextID += 1 }
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let wake: Result<Void, any Error>? = state.withLockedValue { state in
                    if state.cancelled.remove(id) != nil { return .failure(CancellationError()) }
                    if deadline <= state.now { return .success(()) }
                    state.sleepers[id] = (deadline, continuation)
                    return nil
                }
                if let wake { continuation.resume(with: wake) }
            }
        } onCancel: {
            let sleeper = state.withLockedValue { state in
                let sleeper = state.sleepers.removeValue(forKey: id)
                if sleeper == nil { state.cancelled.insert(id) }
                return sleeper
            }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Moves the clock on, waking every sleeper whose deadline it passes.
    func advance(by duration: Duration) {
        let woken = state.withLockedValue { state in
            state.now = state.now.advanced(by: duration)
            let due = state.sleepers.filter { $0.value.deadline <= state.now }
            for id in due.keys { state.sleepers[id] = nil }
            return due.values.map(\.continuation)
        }
        for continuation in woken { continuation.resume() }
    }
}
