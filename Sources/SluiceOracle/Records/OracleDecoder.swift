// The records oracle's typed decoder: one CSV or JSON record to the values of the schema's fields,
// or why it is a dead letter. Written from issue 12's contract, apart from the engine's
// RecordDecoder (shares only the plain types Field and Value). PostgreSQL text mode (outbox and
// CDC row images) is not implemented here: the oracle reads file inputs only.

import SluiceCore

struct OracleDecoder {
    let fields: [Field]
    let format: RecordFormat

    /// Each field's JSON path, as UTF-8 bytes (member names compare as bytes).
    let paths: [[[UInt8]]]

    init(schema: Schema, format: RecordFormat) {
        fields = schema.fields
        self.format = format
        paths = schema.fields.map { $0.jsonPath.map { Array($0.utf8) } }
    }

    enum Outcome {
        case values([Value])
        case dead(String)
    }

    /// For CSV with a header: the column of each schema field (first header name equal by UTF-8
    /// bytes; nil: absent, read as null), or why the header cannot be read.
    func columns(ofHeader header: SplitRecord) -> Result<[Int?], OracleJSONError> {
        guard case .csv(_, let delimiter) = format else { return .success(fields.map { _ in nil }) }
        if header.unterminated { return .failure(OracleJSONError("header: unterminated quote")) }
        switch RecordSplitter.csvFields(header.bytes, delimiter: delimiter) {
        case .failure(let e): return .failure(OracleJSONError("header: \(e.description)"))
        case .success(let names):
            return .success(fields.map { field in names.firstIndex { $0.bytes.elementsEqual(field.name.utf8) } })
        }
    }

    func decode(_ record: SplitRecord, columns: [Int?]?) -> Outcome {
        if record.bytes.isEmpty { return .dead("empty record") }
        if record.unterminated { return .dead("unterminated quote at end of input") }
        switch format {
        case .csv(_, let delimiter): return decodeCSV(record.bytes, delimiter: delimiter, columns: columns)
        case .json: return decodeJSON(Array(record.bytes))
        }
    }

    // MARK: CSV

    private func decodeCSV(_ bytes: ArraySlice<UInt8>, delimiter: UInt8, columns: [Int?]?) -> Outcome {
        let texts: [RecordSplitter.CSVField]
        switch RecordSplitter.csvFields(bytes, delimiter: delimiter) {
        case .failure(let e): return .dead(e.description)
        case .success(let t): texts = t
        }
        // Without a header, values come in schema order, exactly one per field; with one, by name
        // (a record with fewer columns has the rest missing; extra columns are ignored).
        if columns == nil, texts.count != fields.count {
            return .dead("expected \(fields.count) fields, got \(texts.count)")
        }
        var values: [Value] = []
        for (f, field) in fields.enumerated() {
            let column: Int? = columns.map { $0[f] } ?? f
            var value = Value.null
            if let column, column < texts.count, !(texts[column].bytes.isEmpty && !texts[column].quoted) {
                switch Self.text(texts[column].bytes, field) {
                case .dead(let reason): return .dead(reason)
                case .values(let v): value = v[0]
                }
            }
            if let reason = check(value, field) { return .dead(reason) }
            values.append(value)
        }
        return .values(values)
    }

    /// A CSV value's text (never the null case) as the field's type.
    static func text(_ bytes: [UInt8], _ field: Field) -> Outcome {
        let shown = "\"\(String(decoding: bytes, as: UTF8.self))\""
        let wrong = Outcome.dead("field '\(field.name)': expected \(field.type.rawValue), found \(shown)")
        switch field.type {
        case .string:
            guard let s = String(validating: bytes, as: UTF8.self) else { return .dead("field '\(field.name)': not valid UTF-8") }
            return .values([.string(s)])
        case .int64:
            guard let v = OracleNumbers.int64(bytes) else { return wrong }
            return .values([.int64(v)])
        case .uint64:
            guard let v = OracleNumbers.uint64(bytes) else { return wrong }
            return .values([.uint64(v)])
        case .float64:
            guard let v = OracleNumbers.float64(bytes) else { return wrong }
            guard v.isFinite else { return .dead("field '\(field.name)': not a finite number: \(shown)") }
            return .values([.float64(v)])
        case .bool:
            if bytes.elementsEqual("true".utf8) { return .values([.bool(true)]) }
            if bytes.elementsEqual("false".utf8) { return .values([.bool(false)]) }
            return wrong
        case .timestamp:
            if let ms = OracleNumbers.int64(bytes) { return .values([.timestamp(ms)]) }
            guard let ms = OracleTime.parse(bytes) else { return wrong }
            return .values([.timestamp(ms)])
        case .decimal:
            guard let v = OracleNumbers.decimal(bytes, scale: field.scale, exponent: false) else {
                return .dead("field '\(field.name)': expected decimal with scale \(field.scale), found \(shown)")
            }
            return .values([.decimal(v, scale: field.scale)])
        }
    }

    // MARK: JSON

    private func decodeJSON(_ bytes: [UInt8]) -> Outcome {
        let root: OracleJSON
        switch OracleJSON.parse(bytes) {
        case .failure(let e): return .dead("not JSON: \(e.description)")
        case .success(let v): root = v
        }
        guard case .object = root else { return .dead("not a JSON object") }
        var values: [Value] = []
        for (f, field) in fields.enumerated() {
            // Walk the path: a missing member or a null on the way is a missing value; anything
            // else on the way that is not an object is a dead letter.
            var node: OracleJSON? = root
            for (depth, step) in paths[f].enumerated() {
                guard let current = node else { break }
                switch current {
                case .object: node = current.member(bytes: step)
                case .null: node = nil
                default:
                    return .dead("field '\(field.name)': '\(field.jsonPath[0..<depth].joined(separator: "."))' is not an object")
                }
            }
            var value = Value.null
            if let node {
                switch Self.json(node, field) {
                case .dead(let reason): return .dead(reason)
                case .values(let v): value = v[0]
                }
            }
            if let reason = check(value, field) { return .dead(reason) }
            values.append(value)
        }
        return .values(values)
    }

    /// A JSON value as the field's type (null passes as null; `check` decides if it may be).
    static func json(_ node: OracleJSON, _ field: Field) -> Outcome {
        if case .null = node { return .values([.null]) }
        let wrong = Outcome.dead("field '\(field.name)': expected \(field.type.rawValue), found \(node.shown)")
        switch (field.type, node) {
        case (.string, .string(let s)):
            return .values([.string(s)])
        case (.int64, .number(let n)):
            guard let v = OracleNumbers.int64(Array(n.utf8)) else { return wrong }
            return .values([.int64(v)])
        case (.uint64, .number(let n)):
            guard let v = OracleNumbers.uint64(Array(n.utf8)) else { return wrong }
            return .values([.uint64(v)])
        case (.float64, .number(let n)):
            guard let v = Double(n), v.isFinite else { return .dead("field '\(field.name)': not a finite number: \(n)") }
            return .values([.float64(v)])
        case (.bool, .bool(let b)):
            return .values([.bool(b)])
        case (.timestamp, .string(let s)):
            guard let ms = OracleTime.parse(Array(s.utf8)) else { return wrong }
            return .values([.timestamp(ms)])
        case (.timestamp, .number(let n)):
            guard let ms = OracleNumbers.int64(Array(n.utf8)) else { return wrong }
            return .values([.timestamp(ms)])
        case (.decimal, .number(let n)):
            guard let v = OracleNumbers.decimal(Array(n.utf8), scale: field.scale, exponent: true) else {
                return .dead("field '\(field.name)': expected decimal with scale \(field.scale), found \(n)")
            }
            return .values([.decimal(v, scale: field.scale)])
        case (.decimal, .string(let s)):
            guard let v = OracleNumbers.decimal(Array(s.utf8), scale: field.scale, exponent: false) else {
                return .dead("field '\(field.name)': expected decimal with scale \(field.scale), found \"\(s)\"")
            }
            return .values([.decimal(v, scale: field.scale)])
        default:
            return wrong
        }
    }

    // MARK: rules for every format

    /// Null where the field is not nullable, or below the field's `min`.
    private func check(_ value: Value, _ field: Field) -> String? {
        switch value {
        case .null:
            return field.nullable ? nil : "field '\(field.name)': missing or null (the field is not nullable)"
        case .int64(let v), .timestamp(let v), .decimal(let v, _):
            if let m = field.minimum, v < m { return "field '\(field.name)' is below its minimum" }
        case .uint64(let v):
            if let m = field.minimum, m > 0, v < UInt64(m) { return "field '\(field.name)' is below its minimum" }
        case .float64(let v):
            if let m = field.minimumFloat, v < m { return "field '\(field.name)' is below its minimum" }
        case .string, .bool:
            break
        }
        return nil
    }
}

/// Number text, read exactly.
enum OracleNumbers {
    /// `[0-9]+` within UInt64.
    static func uint64(_ b: [UInt8]) -> UInt64? {
        guard !b.isEmpty else { return nil }
        var v: UInt64 = 0
        for c in b {
            guard c >= 0x30, c <= 0x39 else { return nil }
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(UInt64(c - 0x30))
            if o1 || o2 { return nil }
            v = s
        }
        return v
    }

    /// `-?[0-9]+` within Int64.
    static func int64(_ b: [UInt8]) -> Int64? {
        let negative = b.first == UInt8(ascii: "-")
        guard let magnitude = uint64(Array(b.dropFirst(negative ? 1 : 0))) else { return nil }
        let value = negative ? -Int128(magnitude) : Int128(magnitude)
        return Int64(exactly: value)
    }

    /// `-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?` as a Double (nil for other text; may be infinite).
    static func float64(_ b: [UInt8]) -> Double? {
        var i = 0
        func digits() -> Bool {
            let s = i
            while i < b.count, b[i] >= 0x30, b[i] <= 0x39 { i += 1 }
            return i > s
        }
        if i < b.count, b[i] == UInt8(ascii: "-") { i += 1 }
        guard digits() else { return nil }
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            guard digits() else { return nil }
        }
        if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
            i += 1
            if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
            guard digits() else { return nil }
        }
        guard i == b.count else { return nil }
        return Double(String(decoding: b, as: UTF8.self))
    }

    /// Decimal text as an unscaled Int64 at `scale`: `-?[0-9]+(\.[0-9]+)?`, and with `exponent`
    /// (a JSON number) `([eE][+-]?[0-9]+)?`. Refused when its fraction digits as written, after
    /// the exponent shifts them, exceed `scale` (trailing zeros included), or when out of range.
    static func decimal(_ b: [UInt8], scale: Int, exponent: Bool) -> Int64? {
        var i = 0
        var negative = false
        if i < b.count, b[i] == UInt8(ascii: "-") { negative = true; i += 1 }
        var digits: [Int] = []
        var fraction = 0
        let intStart = i
        while i < b.count, b[i] >= 0x30, b[i] <= 0x39 { digits.append(Int(b[i] - 0x30)); i += 1 }
        guard i > intStart else { return nil }
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            let s = i
            while i < b.count, b[i] >= 0x30, b[i] <= 0x39 { digits.append(Int(b[i] - 0x30)); fraction += 1; i += 1 }
            guard i > s else { return nil }
        }
        if exponent, i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
            i += 1
            var sign = 1
            if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
                if b[i] == UInt8(ascii: "-") { sign = -1 }
                i += 1
            }
            let s = i
            var e = 0
            while i < b.count, b[i] >= 0x30, b[i] <= 0x39 { e = min(e * 10 + Int(b[i] - 0x30), 100_000); i += 1 }
            guard i > s else { return nil }
            fraction -= sign * e
        }
        guard i == b.count, fraction <= scale else { return nil }
        // value = digits × 10^(scale − fraction) at `scale`; computed in Int128, checked each step.
        var v: Int128 = 0
        let limit = Int128(Int64.max) + 1
        for d in digits {
            v = v * 10 + Int128(d)
            if v > limit { return nil }
        }
        for _ in 0..<(scale - fraction) {
            v *= 10
            if v > limit { return nil }
        }
        return Int64(exactly: negative ? -v : v)
    }
}

/// RFC 3339 timestamps, read by the oracle: `YYYY-MM-DD(T|t| )HH:MM:SS[.fraction](Z|z|±HH:MM)`.
/// A fraction past milliseconds is cut (toward the past). Leap seconds (`:60`) are refused.
enum OracleTime {
    static func parse(_ b: [UInt8]) -> Int64? {
        var i = 0
        func num(_ width: Int) -> Int64? {
            guard i + width <= b.count else { return nil }
            var v: Int64 = 0
            for k in i..<(i + width) {
                guard b[k] >= 0x30, b[k] <= 0x39 else { return nil }
                v = v * 10 + Int64(b[k] - 0x30)
            }
            i += width
            return v
        }
        func take(_ c: Character) -> Bool {
            guard i < b.count, let a = c.asciiValue, b[i] == a else { return false }
            i += 1
            return true
        }
        guard let year = num(4), take("-"), let month = num(2), take("-"), let day = num(2) else { return nil }
        guard take("T") || take("t") || take(" ") else { return nil }
        guard let hour = num(2), take(":"), let minute = num(2), take(":"), let second = num(2) else { return nil }
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let monthDays: [Int64] = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        guard month >= 1, month <= 12, day >= 1, day <= monthDays[Int(month - 1)],
              hour <= 23, minute <= 59, second <= 59 else { return nil }
        var millis: Int64 = 0
        if take(".") {
            var n = 0
            while i < b.count, b[i] >= 0x30, b[i] <= 0x39 {
                if n < 3 { millis = millis * 10 + Int64(b[i] - 0x30) }
                n += 1
                i += 1
            }
            guard n > 0 else { return nil }
            if n < 3 { for _ in n..<3 { millis *= 10 } }
        }
        var offsetMinutes: Int64 = 0
        if take("Z") || take("z") {
        } else if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
            let sign: Int64 = b[i] == UInt8(ascii: "-") ? -1 : 1
            i += 1
            guard let oh = num(2), take(":"), let om = num(2), oh <= 23, om <= 59 else { return nil }
            offsetMinutes = sign * (oh * 60 + om)
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        // Days since 1970-01-01, counted plainly: whole years (365 each, plus the leap years in
        // between), then the months of this year.
        var days = 365 * (year - 1970) + leapYears(before: year) - leapYears(before: 1970)
        for m in 0..<Int(month - 1) { days += monthDays[m] }
        days += day - 1
        let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offsetMinutes * 60
        return seconds * 1_000 + millis
    }

    /// Leap years in 0..<y (year 0 is one), for 0 <= y <= 9999.
    static func leapYears(before y: Int64) -> Int64 {
        y == 0 ? 0 : (y - 1) / 4 - (y - 1) / 100 + (y - 1) / 400 + 1
    }
}
