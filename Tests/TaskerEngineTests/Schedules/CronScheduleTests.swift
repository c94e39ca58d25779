import Foundation
import Testing

@testable import TaskerEngine

/// Firings as UTC ISO 8601, so that each expectation reads as the time it names.
private func at(_ text: String) -> Double {
    let fractional = ISO8601DateFormatter()
    fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return (ISO8601DateFormatter().date(from: text) ?? fractional.date(from: text)!).timeIntervalSince1970
}

private func iso(_ seconds: Double?) -> String? {
    seconds.map { ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: $0)) }
}

private func firings(_ cron: String, zone: String = "", after start: String, count: Int, seconds: Bool = false) throws -> [String] {
    let schedule = try CronSchedule(parsing: cron, zone: zone, allowingSeconds: seconds)
    var times: [String] = []
    var from = at(start)
    for _ in 0..<count {
        guard let next = schedule.next(after: from) else { break }
        times.append(iso(next)!)
        from = next
    }
    return times
}

private func refusal(_ cron: String, zone: String = "") -> String? {
    do {
        _ = try CronSchedule(parsing: cron, zone: zone)
        return nil
    } catch {
        guard case .invalidArgument(let message) = error else { return "wrong code: \(error)" }
        return message
    }
}

@Suite struct CronScheduleTests {
    @Test func fieldsListsRangesStepsAndNames() throws {
        #expect(try firings("*/15 * * * *", after: "2026-12-05T10:07:30Z", count: 3)
            == ["2026-12-05T10:15:00Z", "2026-12-05T10:30:00Z", "2026-12-05T10:45:00Z"])
        #expect(try firings("0,30 9-10 * * *", after: "2026-12-05T09:00:00Z", count: 4)
            == ["2026-12-05T09:30:00Z", "2026-12-05T10:00:00Z", "2026-12-05T10:30:00Z", "2026-12-06T09:00:00Z"])
        #expect(try firings("0 9 * jan-mar MON-fri", after: "2026-12-05T00:00:00Z", count: 2)
            == ["2027-01-01T09:00:00Z", "2027-01-04T09:00:00Z"], "Friday 1 January, then Monday the 4th")
        #expect(try firings("5/20 0 1 * *", after: "2026-12-05T00:00:00Z", count: 3)
            == ["2027-01-01T00:05:00Z", "2027-01-01T00:25:00Z", "2027-01-01T00:45:00Z"], "a/n runs from a to the field's end")
        #expect(try firings("0 0 * * 7", after: "2026-12-05T00:00:00Z", count: 1) == ["2026-12-06T00:00:00Z"], "7 is Sunday, as 0 is")
    }

    @Test func bothDayFieldsRestrictedFireOnEither() throws {
        // 2026-12-05 is a Saturday: the next Friday is the 11th, the 13th a Sunday.
        #expect(try firings("0 0 13 * 5", after: "2026-12-05T00:00:00Z", count: 3)
            == ["2026-12-11T00:00:00Z", "2026-12-13T00:00:00Z", "2026-12-18T00:00:00Z"])
        #expect(try firings("0 0 */10 * 5", after: "2026-12-05T00:00:00Z", count: 2)
            == ["2026-12-11T00:00:00Z", "2027-01-01T00:00:00Z"], "a day field starting with * restricts with the other: Fridays on days 1, 11, 21, 31")
    }

    @Test func namedSchedules() throws {
        #expect(try firings("@hourly", after: "2026-12-05T10:07:00Z", count: 1) == ["2026-12-05T11:00:00Z"])
        #expect(try firings("@daily", after: "2026-12-05T10:07:00Z", count: 1) == ["2026-12-06T00:00:00Z"])
        #expect(try firings("@midnight", after: "2026-12-05T10:07:00Z", count: 1) == ["2026-12-06T00:00:00Z"])
        #expect(try firings("@weekly", after: "2026-12-05T10:07:00Z", count: 1) == ["2026-12-06T00:00:00Z"], "Sundays")
        #expect(try firings("@monthly", after: "2026-12-05T10:07:00Z", count: 1) == ["2027-01-01T00:00:00Z"])
        #expect(try firings("@YEARLY", after: "2026-12-05T10:07:00Z", count: 1) == ["2027-01-01T00:00:00Z"])
    }

    @Test func aTimeZoneIsReadOnItsWallClockAcrossItsChanges() throws {
        // New York springs forward on 8 March 2026: 02:00 EST becomes 03:00 EDT (07:00Z).
        #expect(try firings("0 2 * * *", zone: "America/New_York", after: "2026-03-06T12:00:00Z", count: 3)
            == ["2026-03-07T07:00:00Z", "2026-03-08T07:00:00Z", "2026-03-09T06:00:00Z"],
                "02:00 does not exist on the 8th: it fires at the first instant after the gap")
        #expect(try firings("*/20 2 * * *", zone: "America/New_York", after: "2026-03-08T06:30:00Z", count: 2)
            == ["2026-03-08T07:00:00Z", "2026-03-09T06:00:00Z"], "three skipped times fire once")
        // ... and falls back on 1 November: 01:00–02:00 comes twice.
        #expect(try firings("30 1 * * *", zone: "America/New_York", after: "2026-10-31T12:00:00Z", count: 2)
            == ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"], "01:30 comes twice that night and fires once, the first time")
        #expect(try firings("0 * * * *", zone: "America/New_York", after: "2026-11-01T04:30:00Z", count: 3)
            == ["2026-11-01T05:00:00Z", "2026-11-01T07:00:00Z", "2026-11-01T08:00:00Z"], "hourly: the repeated 01:00 once; 02:00 EST is 07:00Z")
        // Berlin: 02:00 CET becomes 03:00 CEST on 29 March; 03:00 CEST becomes 02:00 CET on 25 October.
        #expect(try firings("30 2 * * *", zone: "Europe/Berlin", after: "2026-03-28T12:00:00Z", count: 2)
            == ["2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"])
        #expect(try firings("30 2 * * *", zone: "Europe/Berlin", after: "2026-10-24T12:00:00Z", count: 2)
            == ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"])
        #expect(try firings("0 9 * * *", zone: "Asia/Kolkata", after: "2026-12-05T00:00:00Z", count: 1) == ["2026-12-05T03:30:00Z"])
    }

    @Test func secondsAreTakenOnlyWhereAllowed() throws {
        #expect(try firings("*/2 * * * * *", after: "2026-12-05T10:00:01.500Z", count: 2, seconds: true)
            == ["2026-12-05T10:00:02Z", "2026-12-05T10:00:04Z"])
        #expect(refusal("*/2 * * * * *")?.contains("has 6 fields; it takes 5") == true)
    }

    @Test func aCronThatNeverFiresHasNoNextTime() throws {
        #expect(try CronSchedule(parsing: "0 0 31 2 *", zone: "").next(after: at("2026-12-05T00:00:00Z")) == nil)
        #expect(try firings("0 0 29 2 *", after: "2026-12-05T00:00:00Z", count: 1) == ["2028-02-29T00:00:00Z"], "a leap day is found")
    }

    @Test func badCronsAndZonesAreRefusedNamingTheField() {
        #expect(refusal("* * * *") == "cron '* * * *' has 4 fields; it takes 5 (minute hour day-of-month month day-of-week) or a name such as @daily")
        #expect(refusal("61 * * * *") == "cron minute field '61': '61' is not a value from 0 to 59")
        #expect(refusal("* 24 * * *") == "cron hour field '24': '24' is not a value from 0 to 23")
        #expect(refusal("* * 0 * *") == "cron day-of-month field '0': '0' is not a value from 1 to 31")
        #expect(refusal("* * * 13 *") == "cron month field '13': '13' is not a value from 1 to 12 or JAN-DEC")
        #expect(refusal("* * * * FUNDAY") == "cron day-of-week field 'FUNDAY': 'FUNDAY' is not a value from 0 to 7 or SUN-SAT")
        #expect(refusal("*/0 * * * *") == "cron minute field '*/0': the step '0' is not a number from 1 to 59")
        #expect(refusal("5-1 * * * *") == "cron minute field '5-1': the range '5-1' runs backwards")
        #expect(refusal("1,,2 * * * *") == "cron minute field '1,,2' has an empty item")
        #expect(refusal("1-2-3 * * * *") == "cron minute field '1-2-3' has two '-' in one item")
        #expect(refusal("@every 5m") == "cron '@every 5m' is no cron name; the names are @hourly, @daily, @midnight, @weekly, @monthly, @yearly, @annually")
        #expect(refusal("0 0 * * *", zone: "Mars/Olympus") == "timezone 'Mars/Olympus' is not an IANA time zone such as 'Europe/Berlin' or 'UTC'")
        #expect(refusal("") == "cron '' has 0 fields; it takes 5 (minute hour day-of-month month day-of-week) or a name such as @daily")
    }
}
