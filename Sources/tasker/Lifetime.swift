import ArgumentParser

/// A span of time such as 90d, 12h, 30m or 45s: a token's lifetime, an age of tasks to prune.
struct Lifetime: ExpressibleByArgument {
    let seconds: Double

    init?(argument: String) {
        let units: [Character: Double] = ["d": 86_400, "h": 3_600, "m": 60, "s": 1]
        guard let unit = argument.last.flatMap({ units[$0] }), let count = Double(argument.dropLast()), count > 0, count.isFinite else { return nil }
        seconds = count * unit
    }
}
