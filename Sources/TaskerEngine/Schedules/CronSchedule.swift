import Foundation

/// When a schedule fires: a cron expression read in a time zone.
///
/// Five fields, minute hour day-of-month month day-of-week (or one of the @ names), each a list
/// of `*`, values, ranges and steps. A sixth field of seconds in front is taken only where
/// `allowingSeconds` says (tests drive schedules in seconds rather than minutes). Firings are
/// found on the zone's wall clock: a wall time the spring change skips fires at the first
/// instant after the gap; one the autumn change repeats fires once, at its first occurrence.
public struct CronSchedule: Sendable {
    /// Which values of each field match, indexed by value.
    private let seconds: [Bool]
    private let minutes: [Bool]
    private let hours: [Bool]
    private let days: [Bool]
    private let months: [Bool]
    private let weekdays: [Bool]
    /// Whether each day field was written with a `*` first: when neither was, a day matching
    /// either fires (as cron has always done).
    private let anyDay: Bool
    private let anyWeekday: Bool
    public let timeZone: TimeZone

    /// How far ahead a firing is looked for; a cron that matches nothing in that time is refused.
    static let horizonDays = 5 * 366

    static let macros = [
        "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
        "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
    ]
    private static let monthNames = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
    private static let weekdayNames = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]

    /// Parses `cron` in `zone` (an IANA name; empty is UTC). The error names the field and
    /// says what it takes.
    public init(parsing cron: String, zone: String, allowingSeconds: Bool = false) throws(EngineError) {
        guard let timeZone = zone.isEmpty ? TimeZone(identifier: "UTC") : TimeZone(identifier: zone) else {
            throw .invalidArgument("timezone \(InputCheck.quoted(zone)) is not an IANA time zone such as 'Europe/Berlin' or 'UTC'")
        }
        self.timeZone = timeZone
        let trimmed = cron.trimmingCharacters(in: .whitespaces)
        var fields = trimmed.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        if trimmed.hasPrefix("@") {
            guard let expansion = Self.macros[trimmed.lowercased()] else {
                throw .invalidArgument(
                    "cron \(InputCheck.quoted(cron)) is no cron name; the names are @hourly, @daily, @midnight, @weekly, @monthly, @yearly, @annually")
            }
            fields = expansion.split(separator: " ").map(String.init)
        }
        if fields.count == 5 {
            fields.insert("0", at: 0)
        } else if !(allowingSeconds && fields.count == 6) {
            throw .invalidArgument(
                "cron \(InputCheck.quoted(cron)) has \(fields.count) fields; it takes 5 (minute hour day-of-month month day-of-week) or a name such as @daily")
        }
        seconds = try Self.field(fields[0], "second", 0...59)
        minutes = try Self.field(fields[1], "minute", 0...59)
        hours = try Self.field(fields[2], "hour", 0...23)
        days = try Self.field(fields[3], "day-of-month", 1...31)
        months = try Self.field(fields[4], "month", 1...12, names: Self.monthNames, firstName: 1)
        var weekdays = try Self.field(fields[5], "day-of-week", 0...7, names: Self.weekdayNames, firstName: 0)
        if weekdays[7] { weekdays[0] = true }
        self.weekdays = weekdays
        anyDay = fields[3].hasPrefix("*")
        anyWeekday = fields[5].hasPrefix("*")
    }

    /// One field: a comma list of `*`, `n`, `a-b`, each optionally `/step`.
    private static func field(_ text: String, _ name: String, _ range: ClosedRange<Int>, names: [String] = [], firstName: Int = 0) throws(EngineError) -> [Bool] {
        var matches = Array(repeating: false, count: range.upperBound + 1)
        let what = "cron \(name) field \(InputCheck.quoted(text))"
        func value(_ part: Substring) throws(EngineError) -> Int {
            if let number = Int(part), range.contains(number) { return number }
            if let index = names.firstIndex(of: part.uppercased()) { return index + firstName }
            let spelled = names.isEmpty ? "" : " or \(names.first!)-\(names.last!)"
            throw .invalidArgument("\(what): \(InputCheck.quoted(String(part))) is not a value from \(range.lowerBound) to \(range.upperBound)\(spelled)")
        }
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard !item.isEmpty else { throw .invalidArgument("\(what) has an empty item") }
            let parts = item.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count <= 2 else { throw .invalidArgument("\(what) has two '/' in one item") }
            var step = 1
            if parts.count == 2 {
                guard let number = Int(parts[1]), number >= 1, number <= range.upperBound else {
                    throw .invalidArgument("\(what): the step \(InputCheck.quoted(String(parts[1]))) is not a number from 1 to \(range.upperBound)")
                }
                step = number
            }
            let span = parts[0]
            var low = range.lowerBound
            var high = range.upperBound
            if span != "*" {
                let ends = span.split(separator: "-", omittingEmptySubsequences: false)
                guard ends.count <= 2 else { throw .invalidArgument("\(what) has two '-' in one item") }
                low = try value(ends[0])
                high = ends.count == 2 ? try value(ends[1]) : (parts.count == 2 ? range.upperBound : low)
                guard low <= high else { throw .invalidArgument("\(what): the range \(InputCheck.quoted(String(span))) runs backwards") }
            }
            for at in stride(from: low, through: high, by: step) { matches[at] = true }
        }
        return matches
    }

    /// The first firing after `instant` (Unix seconds), as Unix seconds; nil when none comes
    /// within five years (a cron such as "0 0 31 2 *").
    public func next(after instant: Double) -> Double? {
        let after = Int(instant.rounded(.down))
        let startWall = after + offset(at: after)
        let firstDay = Self.floorDiv(startWall, 86_400)
        for day in firstDay..<(firstDay + Self.horizonDays) {
            let (_, month, dayOfMonth) = Self.civil(fromDays: day)
            guard months[month] else { continue }
            let weekday = Self.positiveMod(day + 4, 7)  // 1970-01-01 was a Thursday
            let dayMatches = anyDay || anyWeekday ? days[dayOfMonth] && weekdays[weekday] : days[dayOfMonth] || weekdays[weekday]
            guard dayMatches else { continue }
            // On the first day, wall times before the start's cannot fire later than it.
            let from = day == firstDay ? startWall - day * 86_400 : 0
            for hour in (from / 3600)..<24 where hours[hour] {
                let minuteFrom = day == firstDay && hour == from / 3600 ? (from % 3600) / 60 : 0
                for minute in minuteFrom..<60 where minutes[minute] {
                    for second in 0..<60 where seconds[second] {
                        let wall = day * 86_400 + hour * 3600 + minute * 60 + second
                        guard wall > startWall || day > firstDay else { continue }
                        if let at = firstInstant(ofWall: wall), at > after { return Double(at) }
                    }
                }
            }
        }
        return nil
    }

    /// The zone's offset from UTC at an instant, in seconds.
    private func offset(at instant: Int) -> Int {
        timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(instant)))
    }

    /// The first instant the zone's clock reads `wall` (seconds as if the zone were UTC); for a
    /// wall time skipped by a change of offset, the instant of the change.
    private func firstInstant(ofWall wall: Int) -> Int? {
        let before = offset(at: wall - 86_400)
        let after = offset(at: wall + 86_400)
        let readings = Set([wall - before, wall - after]).filter { $0 + offset(at: $0) == wall }
        if let first = readings.min() { return first }
        // In the gap: the change comes after wall - after and no later than wall - before.
        if let change = timeZone.nextDaylightSavingTimeTransition(after: Date(timeIntervalSince1970: Double(wall - after))) {
            return Int(change.timeIntervalSince1970.rounded())
        }
        return wall - before
    }

    /// Year, month (1–12) and day (1–31) of a day counted from 1970-01-01 (proleptic Gregorian).
    static func civil(fromDays days: Int) -> (year: Int, month: Int, day: Int) {
        let shifted = days + 719_468
        let era = floorDiv(shifted, 146_097)
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    private static func floorDiv(_ a: Int, _ b: Int) -> Int { a >= 0 ? a / b : -((-a + b - 1) / b) }
    private static func positiveMod(_ a: Int, _ b: Int) -> Int { ((a % b) + b) % b }
}
