import Foundation
import SluiceCore
import SluiceJob
import SluiceStorage

/// The typed output of a records job (`!pipeline.isIntegerCSV`), shared by the three sinks and
/// their read-back (docs/DESIGN.md, "Records: output"): columns `window_start_ms`, the key fields by
/// name, then the aggregates (`Pipeline.outputColumns`), typed by `Pipeline.outputTypes`; dedupe's
/// dropped events go to `<table>_duplicates`. Integer jobs never come here: their output stays as
/// it was, byte for byte.
struct RecordColumns: Sendable {
    let names: [String]
    let types: [ValueType]
    /// `window_start_ms` and the key fields: what identifies a row (the upsert key).
    let keyCount: Int

    /// Nil for jobs that do not write typed rows (the integer path, and jobs of kind `changes`).
    init?(job: JobSpec) {
        guard job.kind == .windows, !job.pipeline.isIntegerCSV else { return nil }
        names = job.pipeline.outputColumns
        types = job.pipeline.outputTypes
        keyCount = 1 + job.pipeline.keyFields.count
    }

    var quotedNames: String { names.map { "\"\($0)\"" }.joined(separator: ", ") }

    // MARK: SQLite

    /// uint64 is stored as INTEGER holding its bit pattern (as the bids path stores its uint64
    /// keys); read back with `UInt64(bitPattern:)`. Decimals and timestamps are TEXT in their
    /// `RecordText` form, so that no value passes through a double. (SQLite writes a REAL without
    /// a fraction as an integer, so -0.0 reads back as 0.0: equal as numbers, which is how
    /// `sluice verify` compares floats.)
    static func sqliteType(_ type: ValueType) -> String {
        switch type {
        case .int64, .uint64, .bool: "INTEGER"
        case .float64: "REAL"
        case .string, .decimal, .timestamp: "TEXT"
        }
    }

    var sqliteColumns: String {
        zip(names, types).enumerated().map { i, column in
            "\"\(column.0)\" \(RecordColumns.sqliteType(column.1))" + (i == 0 ? " NOT NULL" : "")
        }.joined(separator: ", ")
    }

    static func bind(_ value: Value, at index: Int32, to statement: SQLiteStatement) {
        switch value {
        case .null: statement.bind(index, nil as String?)
        case .int64(let v): statement.bind(index, v)
        case .uint64(let v): statement.bind(index, Int64(bitPattern: v))
        case .float64(let v): statement.bind(index, v)
        case .bool(let v): statement.bind(index, Int64(v ? 1 : 0))
        case .string(let s): statement.bind(index, s)
        case .decimal, .timestamp: statement.bind(index, RecordText.text(value))
        }
    }

    static func read(_ statement: SQLiteStatement, column: Int32, as type: ValueType, table: String) throws -> Value {
        if statement.isNull(column) { return .null }
        switch type {
        case .int64: return .int64(statement.int64(column))
        case .uint64: return .uint64(UInt64(bitPattern: statement.int64(column)))
        case .float64: return .float64(statement.double(column))
        case .bool: return .bool(statement.int64(column) != 0)
        case .string: return .string(statement.string(column))
        case .decimal, .timestamp:
            return try parse(statement.string(column), as: type, postgres: false, table: table)
        }
    }

    // MARK: PostgreSQL

    static func postgresType(_ type: ValueType) -> String {
        switch type {
        case .int64: "bigint"
        case .uint64: "numeric(20,0)"
        case .float64: "double precision"
        case .bool: "boolean"
        case .timestamp: "timestamptz"
        case .decimal(let scale): "numeric(38,\(scale))"
        case .string: "text"
        }
    }

    var postgresColumns: String {
        zip(names, types).enumerated().map { i, column in
            "\"\(column.0)\" \(RecordColumns.postgresType(column.1))" + (i == 0 ? " NOT NULL" : "")
        }.joined(separator: ", ")
    }

    /// The select list that reads the columns back as text `parse(…, postgres: true)` takes:
    /// timestamps as epoch milliseconds, so that the session's time zone never matters.
    var postgresSelect: String { RecordColumns.postgresSelect(zip(names, types).map { ($0, $1) }) }

    static func postgresSelect(_ columns: [(name: String, type: ValueType)]) -> String {
        columns.map { name, type in
            if case .timestamp = type { return "round(extract(epoch from \"\(name)\") * 1000)::bigint" }
            return "\"\(name)\""
        }.joined(separator: ", ")
    }

    /// Milliseconds since 1970 to PostgreSQL's microseconds since 2000-01-01 UTC.
    static func postgresMicroseconds(_ ms: Int64) -> Int64? {
        let (shifted, o1) = ms.subtractingReportingOverflow(946_684_800_000)
        let (micros, o2) = shifted.multipliedReportingOverflow(by: 1_000)
        return o1 || o2 ? nil : micros
    }

    static func copy(_ value: Value, to out: inout PostgresCopyBuffer, table: String) throws {
        switch value {
        case .null: out.null()
        case .int64(let v): out.int(v)
        case .uint64(let v): out.numeric(String(v))
        case .float64(let v): out.double(v)
        case .bool(let v): out.bool(v)
        case .string(let s): out.text(s)
        case .decimal: out.numeric(RecordText.text(value))
        case .timestamp(let ms):
            guard let micros = postgresMicroseconds(ms) else {
                throw SinkError("\(table): timestamp \(ms) ms lies outside PostgreSQL's timestamptz range")
            }
            out.timestamp(microsecondsSince2000: micros)
        }
    }

    // MARK: Text

    /// A value from its text in a sink: `RecordText` form (SQLite, files), or PostgreSQL's text
    /// output of the column (`t`/`f`, `numeric` at the column's scale, timestamps as epoch ms).
    static func parse(_ text: String, as type: ValueType, postgres: Bool, table: String) throws -> Value {
        func unreadable() -> SinkError { SinkError("\(table): cannot read '\(text)' as \(type)") }
        switch type {
        case .string: return .string(text)
        case .int64:
            guard let v = Int64(text) else { throw unreadable() }
            return .int64(v)
        case .uint64:
            guard let v = UInt64(text) else { throw unreadable() }
            return .uint64(v)
        case .float64:
            guard let v = Double(text) else { throw unreadable() }
            return .float64(v)
        case .bool:
            switch text {
            case "t", "true", "1": return .bool(true)
            case "f", "false", "0": return .bool(false)
            default: throw unreadable()
            }
        case .decimal(let scale):
            guard case .success(let unscaled) = DecimalText.parse(Array(text.utf8), scale: scale, exponent: false,
                                                                  trailingZerosFree: postgres) else { throw unreadable() }
            return .decimal(unscaled, scale: scale)
        case .timestamp:
            if postgres {
                guard let ms = Int64(text) else { throw unreadable() }
                return .timestamp(ms)
            }
            guard let ms = Timestamps.parse(Array(text.utf8)) else { throw unreadable() }
            return .timestamp(ms)
        }
    }
}

/// `<table>_duplicates` and `duplicates-<seq>.csv`: where an event dedupe dropped was read, and
/// the value of the dedupe field (`RecordText.text`; NULL, or an empty CSV field, for null).
enum DuplicateRows {
    static let columns = ["partition", "offset", "value", "sluice_seq"]
    static let csvHeader = "partition,offset,value\n"

    static func text(_ value: Value) -> String? { value.isNull ? nil : RecordText.text(value) }

    static func appendCSV(_ duplicate: DuplicateEvent, partition: Int, to out: inout [UInt8]) {
        appendDecimal(Int64(partition), to: &out)
        out.append(44)
        appendDecimal(duplicate.offset, to: &out)
        out.append(44)
        out.append(contentsOf: RecordText.field(duplicate.value).utf8)
        out.append(10)
    }

    /// One record as `appendCSV` writes it (without its line end); nil if it is not of that form.
    static func parseCSV(_ record: [UInt8]) -> DuplicateEntry? {
        let fields = record.withUnsafeBytes { CSVRecords.fields($0, delimiter: 44) }
        guard case .success(let f) = fields, f.count == 3,
              let partition = Int(String(decoding: f[0].bytes, as: UTF8.self)),
              let offset = Int(String(decoding: f[1].bytes, as: UTF8.self)) else { return nil }
        return DuplicateEntry(partition: partition, offset: offset,
                              value: f[2].isNull ? nil : String(decoding: f[2].bytes, as: UTF8.self))
    }
}
