import Foundation

/// Where a private Postgres keeps its data. Started as root, Postgres runs as the `postgres`
/// user, who cannot enter a folder under a private one (`/root`, mode 0700, as in a container).
/// Such a folder is swapped for one of the postgres user's own, named after the folder asked
/// for, so that `tasker dev` just works and the same clone always finds the same data.
public enum PostgresDataFolder {
    /// The folder asked for, or, as root when the postgres user cannot reach it,
    /// `~postgres/tasker-dev/<project>-<hash of the path>`.
    public static func reachable(for wanted: URL) -> URL {
        guard getuid() == 0, !postgresCanReach(wanted) else { return wanted }
        return postgresHome
            .appendingPathComponent("tasker-dev", isDirectory: true)
            .appendingPathComponent(name(for: wanted), isDirectory: true)
    }

    /// `<project>-<8 hex digits>`: the project is the folder holding the data folder (the clone,
    /// for `<clone>/.tasker/postgres`); the digits tell two clones of one name apart.
    static func name(for wanted: URL) -> String {
        let path = wanted.standardizedFileURL.path
        let components = wanted.standardizedFileURL.pathComponents.filter { $0 != "/" }
        let project = components.dropLast().last(where: { !$0.hasPrefix(".") }) ?? "root"
        // FNV-1a: the same on every run, unlike Hasher.
        var hash: UInt32 = 2_166_136_261
        for byte in path.utf8 { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        let safe = String(project.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" }.prefix(40))
        return "\(safe)-\(String(format: "%08x", hash))"
    }

    /// Whether the postgres user can pass through every folder down to `folder` (or down to
    /// its nearest one that exists: those made below it are made open to others).
    static func postgresCanReach(_ folder: URL) -> Bool {
        var existing = folder.standardizedFileURL
        while !FileManager.default.fileExists(atPath: existing.path), existing.path != "/" {
            existing = existing.deletingLastPathComponent()
        }
        return (try? PrivatePostgres.run("/usr/bin/test", ["-x", existing.path], asPostgres: true)) != nil
    }

    static var postgresHome: URL {
        guard let entry = getpwnam("postgres"), let home = entry.pointee.pw_dir else {
            return URL(fileURLWithPath: "/var/lib/postgresql", isDirectory: true)
        }
        return URL(fileURLWithPath: String(cString: home), isDirectory: true)
    }
}
