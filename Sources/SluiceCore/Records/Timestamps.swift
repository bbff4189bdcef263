/// Event times as milliseconds since the Unix epoch, from and to RFC 3339 text, without Foundation
/// (civil-date arithmetic after Howard Hinnant's `days_from_civil`).
public enum Timestamps {
    /// Event times must lie within ±2^62 ms, so that window arithmetic can never overflow.
    public static let limit: Int64 = 1 << 62

    /// Days from 1970-01-01 to the civil date (proleptic Gregorian).
    public static func days(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civil(days z0: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: (year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// `2026-12-01T10:00:00.123Z`: UTC, always milliseconds. Years outside 0...9999 print as many
    /// digits as they need (with `-` before year 0).
    public static func rfc3339(milliseconds ms: Int64) -> String {
        let dayMs: Int64 = 86_400_000
        let day = ms >= 0 ? ms / dayMs : -((-(ms + 1)) / dayMs) - 1
        let inDay = ms - day * dayMs
        let (y, m, d) = civil(days: day)
        func pad(_ v: Int64, _ width: Int) -> String {
            let s = String(v.magnitude)
            return (v < 0 ? "-" : "") + String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2))T\(pad(inDay / 3_600_000, 2)):\(pad(inDay / 60_000 % 60, 2))"
            + ":\(pad(inDay / 1_000 % 60, 2)).\(pad(inDay % 1_000, 3))Z"
    }

    public enum Style: Sendable {
        /// RFC 3339: `T` (or `t`, or a space) between date and time; `Z` or `±HH:MM`.
        case rfc3339
        /// PostgreSQL's `timestamptz` output (DateStyle ISO): a space, then `±HH`, `±HH:MM` or `±HH:MM:SS`.
        case postgres
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` to milliseconds (a fraction past
    /// milliseconds is cut toward the past). Nil when it is not such a time, or out of range.
    public static func parse(_ text: some Collection<UInt8>, style: Style = .rfc3339) -> Int64? {
        let b = Array(text)
        var i = 0
        func number(_ width: Int) -> Int64? {
            guard i + width <= b.count else { return nil }
            var v: Int64 = 0
            for k in i..<(i + width) {
                guard b[k] >= 48, b[k] <= 57 else { return nil }
                v = v * 10 + Int64(b[k] - 48)
            }
            i += width
            return v
        }
        func expect(_ c: UInt8) -> Bool {
            guard i < b.count, b[i] == c else { return false }
            i += 1
            return true
        }
        guard let year = number(4), expect(45), let month = number(2), expect(45), let day = number(2) else { return nil }
        guard i < b.count, b[i] == UInt8(ascii: "T") || b[i] == UInt8(ascii: "t") || b[i] == 32 else { return nil }
        i += 1
        guard let hour = number(2), expect(58), let minute = number(2), expect(58), let second = number(2) else { return nil }
        guard (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year),
              hour <= 23, minute <= 59, second <= 59 else { return nil }
        var millis: Int64 = 0
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            var digits = 0
            while i < b.count, b[i] >= 48, b[i] <= 57 {
                if digits < 3 { millis = millis * 10 + Int64(b[i] - 48) }
                digits += 1
                i += 1
            }
            guard digits > 0 else { return nil }
            for _ in digits..<max(digits, 3) { millis *= 10 }
        }
        var offsetSeconds: Int64 = 0
        guard i < b.count else { return nil }
        if style == .rfc3339, b[i] == UInt8(ascii: "Z") || b[i] == UInt8(ascii: "z") {
            i += 1
        } else if b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
            let sign: Int64 = b[i] == UInt8(ascii: "-") ? -1 : 1
            i += 1
            guard let oh = number(2), oh <= 23 else { return nil }
            var om: Int64 = 0, os: Int64 = 0
            if style == .rfc3339 {
                guard expect(58), let m = number(2), m <= 59 else { return nil }
                om = m
            } else if expect(58) {
                guard let m = number(2), m <= 59 else { return nil }
                om = m
                if expect(58) {
                    guard let s = number(2), s <= 59 else { return nil }
                    os = s
                }
            }
            offsetSeconds = sign * (oh * 3_600 + om * 60 + os)
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        let seconds = days(year: year, month: month, day: day) * 86_400 + hour * 3_600 + minute * 60 + second - offsetSeconds
        let ms = seconds * 1_000 + millis
        guard ms <= limit, ms >= -limit else { return nil }
        return ms
    }
}
