import ArgumentParser
import Foundation

/// When a task starts: a time in ISO 8601 (2026-12-06T02:00:00Z, or with an offset), or a span
/// from now such as +10m, +2h or +1d.
struct StartTime: ExpressibleByArgument {
    let date: Date

    init?(argument: String) {
        if argument.hasPrefix("+") {
            guard let span = Lifetime(argument: String(argument.dropFirst())) else { return nil }
            date = Date().addingTimeInterval(span.seconds)
            return
        }
        let formats: [ISO8601DateFormatter.Options] = [[.withInternetDateTime, .withFractionalSeconds], [.withInternetDateTime]]
        for options in formats {
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = options
            if let date = formatter.date(from: argument) {
                self.date = date
                return
            }
        }
        return nil
    }

    static var defaultCompletionKind: CompletionKind { .default }
}
