/// The typed decoder: one record (a CSV record, a JSON object, a PostgreSQL row image) to the
/// values of the schema's fields, or the reason it is a dead letter, naming the field and the
/// problem (`field 'amount': expected decimal with scale 2, found "12.345"`). Independent of the
/// connector: a file line, an outbox payload, a CDC row image and a message value all come here.
public struct RecordFailure: Error, Equatable, Sendable, CustomStringConvertible {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

public struct RecordDecoder: Sendable {
    /// How text values are read. `postgres`: PostgreSQL's text output, as row images (outbox, CDC)
    /// carry it: `t`/`f`, `timestamptz` as PostgreSQL prints it, `numeric` text with the column's
    /// own scale; every value may arrive as a string.
    public enum TextMode: Sendable, Equatable { case standard, postgres }

    public let fields: [Field]
    public let format: RecordFormat
    public let mode: TextMode
    /// The schema's JSON paths, for the fast path (JSONFieldReader.swift).
    let jsonPaths: JSONPathTrie

    public init(schema: Schema, format: RecordFormat, mode: TextMode = .standard) {
        fields = schema.fields
        self.format = format
        self.mode = mode
        jsonPaths = JSONPathTrie(fields: schema.fields)
    }

    /// For CSV with a header: which column holds each schema field (nil: absent, read as null).
    public func columns(ofHeader record: UnsafeRawBufferPointer) -> Result<[Int?], RecordFailure> {
        guard case .csv(_, let delimiter) = format else { return .failure(RecordFailure("a header belongs to CSV only")) }
        switch CSVRecords.fields(record, delimiter: delimiter) {
        case .failure(let f): return .failure(RecordFailure("header: \(f.reason)"))
        case .success(let names):
            let texts = names.map { String(decoding: $0.bytes, as: UTF8.self) }
            return .success(fields.map { field in texts.firstIndex { $0.utf8.elementsEqual(field.name.utf8) } })
        }
    }

    /// Decodes one record (without its line end). `columns` is the header's mapping for CSV with a
    /// header, nil otherwise.
    public func decode(_ record: UnsafeRawBufferPointer, columns: [Int?]? = nil) -> Result<[Value], RecordFailure> {
        switch format {
        case .csv(_, let delimiter): return decodeCSV(record, delimiter: delimiter, columns: columns)
        case .json: return decodeJSON(record)
        }
    }

    // MARK: CSV

    private func decodeCSV(_ record: UnsafeRawBufferPointer, delimiter: UInt8, columns: [Int?]?) -> Result<[Value], RecordFailure> {
        let texts: [CSVRecords.FieldText]
        switch CSVRecords.fields(record, delimiter: delimiter) {
        case .failure(let f): return .failure(RecordFailure(f.reason))
        case .success(let t): texts = t
        }
        if columns == nil, texts.count != fields.count {
            return .failure(RecordFailure("expected \(fields.count) fields, got \(texts.count)"))
        }
        var values: [Value] = []
        values.reserveCapacity(fields.count)
        for (f, field) in fields.enumerated() {
            let column = columns.map { $0[f] } ?? f
            let text = column.flatMap { $0 < texts.count ? texts[$0] : nil }
            let value: Value
            switch text {
            case nil, .some(CSVRecords.FieldText(bytes: [], quoted: false)):
                guard field.nullable else { return .failure(RecordFailure("field '\(field.name)': missing (the field is not nullable)")) }
                value = .null
            case .some(let t):
                switch decodeText(t.bytes, field: field) {
                case .failure(let e): return .failure(e)
                case .success(let v): value = v
                }
            }
            if let problem = bound(value, field) { return .failure(problem) }
            values.append(value)
        }
        return .success(values)
    }

    // MARK: JSON

    private func decodeJSON(_ record: UnsafeRawBufferPointer) -> Result<[Value], RecordFailure> {
        if mode == .standard, let values = fastJSON(record) { return .success(values) }
        return decodeJSONTree(record)
    }

    /// The slow path: the whole record as a `JSONValue` tree, with the reason when it fails.
    func decodeJSONTree(_ record: UnsafeRawBufferPointer) -> Result<[Value], RecordFailure> {
        var end = record.count
        if end > 0, record[end - 1] == 13 { end -= 1 }
        let root: JSONValue
        switch JSONParser.parse(UnsafeRawBufferPointer(rebasing: record[0..<end])) {
        case .failure(let e): return .failure(RecordFailure(e.description))
        case .success(let v): root = v
        }
        guard case .object = root else { return .failure(RecordFailure("not a JSON object: \(root.text.prefix(40))")) }
        var values: [Value] = []
        values.reserveCapacity(fields.count)
        for field in fields {
            var node: JSONValue? = root
            for (depth, step) in field.jsonPath.enumerated() {
                guard let current = node else { break }
                if case .object = current {
                    node = current.member(step)
                } else if case .null = current {
                    node = nil  // a null parent: the field is missing
                } else {
                    let parent = field.jsonPath[0..<depth].joined(separator: ".")
                    return .failure(RecordFailure("field '\(field.name)': '\(parent)' is \(current.text.prefix(40)), not an object"))
                }
            }
            let value: Value
            switch node {
            case nil, .some(.null):
                guard field.nullable else {
                    let what = node == nil ? "missing" : "null"
                    return .failure(RecordFailure("field '\(field.name)': \(what) (the field is not nullable)"))
                }
                value = .null
            case .some(let json):
                switch decodeJSONValue(json, field: field) {
                case .failure(let e): return .failure(e)
                case .success(let v): value = v
                }
            }
            if let problem = bound(value, field) { return .failure(problem) }
            values.append(value)
        }
        return .success(values)
    }

    private func decodeJSONValue(_ json: JSONValue, field: Field) -> Result<Value, RecordFailure> {
        if mode == .postgres, case .string(let s) = json, field.type != .string {
            return decodeText(Array(s.utf8), field: field, found: json.text)
        }
        let wrong = { Result<Value, RecordFailure>.failure(self.expected(field, found: json.text)) }
        switch field.type {
        case .string:
            guard case .string(let s) = json else { return wrong() }
            return .success(.string(s))
        case .int64, .uint64:
            guard case .number(let digits) = json, !digits.contains(where: { $0 == 46 || $0 == 101 || $0 == 69 }) else { return wrong() }
            return decodeText(digits, field: field, found: json.text)
        case .float64:
            guard case .number(let digits) = json else { return wrong() }
            return decodeText(digits, field: field, found: json.text)
        case .bool:
            guard case .bool(let b) = json else { return wrong() }
            return .success(.bool(b))
        case .timestamp:
            switch json {
            case .string(let s):
                guard let ms = Timestamps.parse(Array(s.utf8)) else { return wrong() }
                return .success(.timestamp(ms))
            case .number(let digits) where !digits.contains(where: { $0 == 46 || $0 == 101 || $0 == 69 }):
                return decodeText(digits, field: field, found: json.text)
            default: return wrong()
            }
        case .decimal:
            switch json {
            case .number(let digits): return decimal(digits, field: field, exponent: true, found: json.text)
            case .string(let s): return decimal(Array(s.utf8), field: field, exponent: false, found: json.text)
            default: return wrong()
            }
        }
    }

    // MARK: text values (CSV fields, PostgreSQL text)

    /// Decodes the text of one value. `found` is how the value is shown in a reason (the JSON text
    /// for JSON, the quoted text for CSV).
    func decodeText(_ bytes: [UInt8], field: Field, found: String? = nil) -> Result<Value, RecordFailure> {
        let shown = found ?? JSONValue.quote(String(decoding: bytes, as: UTF8.self))
        let wrong = { Result<Value, RecordFailure>.failure(self.expected(field, found: shown)) }
        switch field.type {
        case .string:
            guard let s = String(validating: bytes, as: UTF8.self) else {
                return .failure(RecordFailure("field '\(field.name)': not valid UTF-8"))
            }
            return .success(.string(s))
        case .int64:
            guard let v = RecordDecoder.integer(bytes, signed: true) else { return wrong() }
            return .success(.int64(v))
        case .uint64:
            guard let v = RecordDecoder.unsigned(bytes) else { return wrong() }
            return .success(.uint64(v))
        case .float64:
            guard RecordDecoder.isDecimalNumber(bytes), let v = Double(String(decoding: bytes, as: UTF8.self)) else {
                if mode == .postgres || bytes.contains(where: { $0 == UInt8(ascii: "n") || $0 == UInt8(ascii: "N") || $0 == UInt8(ascii: "I") || $0 == UInt8(ascii: "i") }) {
                    return .failure(RecordFailure("field '\(field.name)': expected a finite float64, found \(shown)"))
                }
                return wrong()
            }
            guard v.isFinite else { return .failure(RecordFailure("field '\(field.name)': expected a finite float64, found \(shown)")) }
            return .success(.float64(v))
        case .bool:
            switch String(decoding: bytes, as: UTF8.self) {
            case "true": return .success(.bool(true))
            case "false": return .success(.bool(false))
            case "t" where mode == .postgres: return .success(.bool(true))
            case "f" where mode == .postgres: return .success(.bool(false))
            default: return wrong()
            }
        case .timestamp:
            if let ms = RecordDecoder.integer(bytes, signed: true) { return .success(.timestamp(ms)) }
            guard let ms = Timestamps.parse(bytes, style: mode == .postgres ? .postgres : .rfc3339) else { return wrong() }
            return .success(.timestamp(ms))
        case .decimal:
            return decimal(bytes, field: field, exponent: false, found: shown)
        }
    }

    func decimal(_ bytes: [UInt8], field: Field, exponent: Bool, found: String) -> Result<Value, RecordFailure> {
        switch DecimalText.parse(bytes, scale: field.scale, exponent: exponent, trailingZerosFree: mode == .postgres) {
        case .success(let v): return .success(.decimal(v, scale: field.scale))
        case .failure(.outOfRange):
            return .failure(RecordFailure("field '\(field.name)': \(found) is out of range for decimal with scale \(field.scale)"))
        case .failure: return .failure(expected(field, found: found))
        }
    }

    private func expected(_ field: Field, found: String) -> RecordFailure {
        let what: String
        switch field.type {
        case .string: what = "string"
        case .int64: what = "int64 (an integer)"
        case .uint64: what = "uint64 (a non-negative integer)"
        case .float64: what = "float64 (a number)"
        case .bool: what = mode == .postgres ? "bool (t or f)" : "bool (true or false)"
        case .timestamp: what = mode == .postgres ? "timestamp (timestamptz text or integer milliseconds)" : "timestamp (RFC 3339 text with an offset, or integer milliseconds)"
        case .decimal: what = "decimal with scale \(field.scale)"
        }
        return RecordFailure("field '\(field.name)': expected \(what), found \(found)")
    }

    /// The field's `min`, if the value is below it.
    func bound(_ value: Value, _ field: Field) -> RecordFailure? {
        switch value {
        case .int64(let v): if let m = field.minimum, v < m { return RecordFailure("field '\(field.name)' must be >= \(m)") }
        case .timestamp(let v): if let m = field.minimum, v < m { return RecordFailure("field '\(field.name)' must be >= \(m)") }
        case .decimal(let v, let scale):
            if let m = field.minimum, v < m {
                return RecordFailure("field '\(field.name)' must be >= \(DecimalText.format(m, scale: scale))")
            }
        case .float64(let v): if let m = field.minimumFloat, v < m { return RecordFailure("field '\(field.name)' must be >= \(m)") }
        default: break
        }
        return nil
    }

    // MARK: number syntax

    /// `-?[0-9]+` within Int64.
    static func integer(_ bytes: [UInt8], signed: Bool) -> Int64? {
        var i = 0
        var negative = false
        if signed, bytes.first == UInt8(ascii: "-") { negative = true; i = 1 }
        guard i < bytes.count else { return nil }
        var magnitude: UInt64 = 0
        while i < bytes.count {
            let c = bytes[i]
            guard c >= 48, c <= 57 else { return nil }
            let (m1, o1) = magnitude.multipliedReportingOverflow(by: 10)
            let (m2, o2) = m1.addingReportingOverflow(UInt64(c - 48))
            if o1 || o2 { return nil }
            magnitude = m2
            i += 1
        }
        if negative {
            guard magnitude <= UInt64(Int64.max) + 1 else { return nil }
            return magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude)
        }
        return magnitude <= UInt64(Int64.max) ? Int64(magnitude) : nil
    }

    /// `[0-9]+` within UInt64.
    static func unsigned(_ bytes: [UInt8]) -> UInt64? {
        guard !bytes.isEmpty else { return nil }
        var v: UInt64 = 0
        for c in bytes {
            guard c >= 48, c <= 57 else { return nil }
            let (m1, o1) = v.multipliedReportingOverflow(by: 10)
            let (m2, o2) = m1.addingReportingOverflow(UInt64(c - 48))
            if o1 || o2 { return nil }
            v = m2
        }
        return v
    }

    /// `-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?`: what float64 text may look like (no `nan`, `inf`, hex).
    static func isDecimalNumber(_ bytes: [UInt8]) -> Bool {
        var i = 0
        if bytes.first == UInt8(ascii: "-") { i = 1 }
        func digits() -> Int {
            let s = i
            while i < bytes.count, bytes[i] >= 48, bytes[i] <= 57 { i += 1 }
            return i - s
        }
        guard digits() > 0 else { return false }
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") { i += 1; guard digits() > 0 else { return false } }
        if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            i += 1
            if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            guard digits() > 0 else { return false }
        }
        return i == bytes.count
    }
}
