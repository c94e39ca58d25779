import Foundation

/// A file that says which process uses a folder, held with flock for as long as the process
/// runs: a second `tasker dev` on the same data folder is told who has it, and a crash frees
/// it (the kernel drops the lock with the process), so a stale file never blocks a start.
public final class RunningLock: @unchecked Sendable {
    public struct Held: Error, CustomStringConvertible {
        public let path: String
        public let pid: Int32?
        public var description: String {
            "already running (pid \(pid.map(String.init) ?? "unknown"))"
        }
    }

    private let descriptor: Int32

    /// Takes the lock at `path` (made, with its folder, when missing) and writes this process's
    /// pid there; throws `Held`, naming the holder's pid, when another process has it.
    public init(_ path: URL) throws {
        try FileManager.default.createDirectory(at: path.deletingLastPathComponent(), withIntermediateDirectories: true)
        let descriptor = open(path.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw PrivatePostgres.Failure(description: "cannot open \(path.path): \(String(cString: strerror(errno)))")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOf: path, encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            close(descriptor)
            throw Held(path: path.path, pid: holder)
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(descriptor, 0)
        _ = pid.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
        self.descriptor = descriptor
    }

    deinit {
        close(descriptor)
    }
}
