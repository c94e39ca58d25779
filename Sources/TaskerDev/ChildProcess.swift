import Foundation

/// A program started as a child with every signal unblocked and at its default action, in a
/// process group of its own. Foundation's Process passes on the signal mask of the thread
/// that starts it, and the threads of Swift's concurrency runtime block nearly every signal,
/// so a server started from one would never see the SIGTERM that asks it to stop. The group
/// of its own keeps a terminal's Ctrl-C for the parent, which stops its children in order.
public final class ChildProcess: @unchecked Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public let pid: pid_t
    private let lock = NSLock()
    private var exitStatus: Int32?

    /// Starts `executable`; its standard output and error go to `log` (appended), to this
    /// process's own (`inheritOutput`), or nowhere.
    public init(executable: String, arguments: [String], log: String? = nil, inheritOutput: Bool = false) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        if !inheritOutput {
            posix_spawn_file_actions_addopen(&actions, 1, log ?? "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0o644)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
        // Nothing else of this process's: a pipe another thread is reading must not stay open
        // in a long-lived server, or that reader never sees its end.
        Self.closeInheritedDescriptors(&actions)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for argument in argv { free(argument) } }
        var child: pid_t = 0
        let status = posix_spawn(&child, executable, &actions, &attributes, argv, environ)
        guard status == 0 else {
            throw Failure(description: "cannot start \(executable): \(String(cString: strerror(status)))")
        }
        pid = child
    }

    /// glibc's closefrom action (2.34 and later; the Swift overlay does not declare it), or a
    /// close action for each descriptor open now.
    private static func closeInheritedDescriptors(_ actions: inout posix_spawn_file_actions_t) {
        typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
        if let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") {
            _ = unsafeBitCast(symbol, to: CloseFrom.self)(&actions, 3)
            return
        }
        let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd"))?.compactMap { Int32($0) } ?? []
        for descriptor in open where descriptor > 2 {
            posix_spawn_file_actions_addclose(&actions, descriptor)
        }
    }

    deinit {
        if isRunning {
            kill(pid, SIGKILL)
            _ = waitForExit(seconds: 5)
        }
    }

    public var isRunning: Bool {
        lock.lock()
        defer { lock.unlock() }
        if exitStatus != nil { return false }
        var status: Int32 = 0
        let reaped = waitpid(pid, &status, WNOHANG)
        if reaped == pid || (reaped == -1 && errno == ECHILD) {
            exitStatus = status
            return false
        }
        return true
    }

    /// The exit status once the child has exited (128 + the signal's number when one ended it).
    public var exitCode: Int32? {
        guard !isRunning else { return nil }
        lock.lock()
        defer { lock.unlock() }
        guard let status = exitStatus else { return nil }
        let signal = status & 0x7F
        return signal == 0 ? (status >> 8) & 0xFF : 128 + signal
    }

    public func signal(_ signal: Int32) {
        if isRunning { kill(pid, signal) }
    }

    /// Returns once the child has exited (or the task is cancelled). The kernel wakes it, through
    /// a pidfd that turns readable when the child exits; where there are no pidfds (Linux before
    /// 5.3) it looks every 100 ms.
    public func exited() async {
        typealias PidfdOpen = @convention(c) (pid_t, UInt32) -> Int32
        guard isRunning else { return }
        guard let symbol = dlsym(nil, "pidfd_open") else { return await pollUntilExited() }
        let descriptor = unsafeBitCast(symbol, to: PidfdOpen.self)(pid, 0)
        guard descriptor >= 0 else { return await pollUntilExited() }
        // A dispatch source may be cancelled from any thread: here by the cancellation handler.
        nonisolated(unsafe) let source = DispatchSource.makeReadSource(fileDescriptor: descriptor, queue: .global())
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                source.setEventHandler { source.cancel() }
                source.setCancelHandler {
                    close(descriptor)
                    continuation.resume()
                }
                source.resume()
            }
        } onCancel: {
            source.cancel()
        }
    }

    private func pollUntilExited() async {
        while isRunning, !Task.isCancelled { try? await Task.sleep(for: .milliseconds(100)) }
    }

    /// Waits up to `seconds` for the child to exit; whether it did.
    public func waitForExit(seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while isRunning {
            if Date() >= deadline { return false }
            usleep(10_000)
        }
        return true
    }

    /// Asks the child to stop with `signal`, and kills it if it has not after `grace` seconds.
    public func stop(signal: Int32 = SIGTERM, grace: Double = 10) {
        self.signal(signal)
        if !waitForExit(seconds: grace) {
            kill(pid, SIGKILL)
            _ = waitForExit(seconds: 5)
        }
    }
}
