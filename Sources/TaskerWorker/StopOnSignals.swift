import Dispatch
import Foundation

/// Signals that drain a worker: on the first, `stop` (finish the steps it holds, then `run`
/// returns). Kept for as long as the worker runs; the signals go back to their default when it
/// is released.
public final class StopOnSignals: @unchecked Sendable {
    private let sources: [any DispatchSourceSignal]
    private let signals: [Int32]

    /// SIGINT and SIGTERM unless told otherwise. The handlers run on a queue of their own, so
    /// this is safe from top-level code (which runs on the main actor).
    public init(_ worker: Worker, signals: [Int32] = [SIGINT, SIGTERM]) {
        self.signals = signals
        sources = signals.map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler(handler: Self.stopping(worker))
            source.resume()
            return source
        }
    }

    /// A handler with no actor of its own: made here, not in the caller's isolation.
    private static func stopping(_ worker: Worker) -> @Sendable () -> Void {
        { Task { await worker.stop() } }
    }

    deinit {
        for source in sources { source.cancel() }
        for number in signals { signal(number, SIG_DFL) }
    }
}
