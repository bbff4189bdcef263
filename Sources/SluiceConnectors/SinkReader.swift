import Foundation
import SluiceCore
import SluiceJob
import SluiceStorage

/// Reads back what a sink committed, as text rows and rejected lines, for `sluice verify`. A
/// records job's rows are `RecordText.row` text, as the oracle renders them, from every sink.
public struct SinkContents: Sendable {
    public var rows: [String] = []
    public var late: [RejectedEntry] = []
    public var deadLetters: [RejectedEntry] = []
    /// Events dedupe dropped (records jobs).
    public var duplicates: [DuplicateEntry] = []

    public init(rows: [String] = [], late: [RejectedEntry] = [], deadLetters: [RejectedEntry] = [],
                duplicates: [DuplicateEntry] = []) {
        self.rows = rows
        self.late = late
        self.deadLetters = deadLetters
        self.duplicates = duplicates
    }
}

/// An event dedupe dropped, as a sink holds it: where it was read, and the dedupe field's value in
/// `RecordText.text` form (nil for null).
public struct DuplicateEntry: Sendable, Equatable {
    public var partition: Int
    public var offset: Int
    public var value: String?

    public init(partition: Int, offset: Int, value: String?) {
        self.partition = partition
        self.offset = offset
        self.value = value
    }
}

/// A late event or dead letter as a sink holds it: where it was read, and the line itself.
public struct RejectedEntry: Sendable, Equatable {
    public var partition: Int
    public var offset: Int
    public var line: String

    public init(partition: Int, offset: Int, line: String) {
        self.partition = partition
        self.offset = offset
        self.line = line
    }
}

public enum SinkReader {
    public static func read(uri: String, job: JobSpec) throws -> SinkContents {
        guard job.kind == .windows else {
            throw SinkError("job '\(job.name)' is of kind changes: its sink holds change events, which have no oracle to verify against; query its table (\(job.table)) directly")
        }
        if uri.hasPrefix("sqlite:") { return try readSQLite(path: String(uri.dropFirst(7)), job: job) }
        if uri.hasPrefix("file:") { return try readFiles(directory: String(uri.dropFirst(5))) }
        if PostgresURL.isPostgres(uri) { return try readPostgres(url: PostgresURL(uri), job: job) }
        throw SinkError("unknown sink '\(PostgresURL.redact(uri))'; expected file:DIR, sqlite:PATH or postgres://…")
    }

    static func readSQLite(path: String, job: JobSpec) throws -> SinkContents {
        guard FileManager.default.fileExists(atPath: path) else { throw SinkError("no database at '\(path)'") }
        let db = try SQLiteDatabase(path: path)
        var contents = SinkContents()
        if let records = RecordColumns(job: job) {
            let select = try db.prepare("SELECT \(records.quotedNames) FROM \"\(job.table)\"")
            while try select.step() {
                var values: [Value] = []
                for (c, type) in records.types.enumerated().dropFirst() {
                    values.append(try RecordColumns.read(select, column: Int32(c), as: type, table: job.table))
                }
                contents.rows.append(RecordText.row(RecordRow(windowStart: select.int64(0), values: values)))
            }
            let duplicates = try db.prepare("SELECT partition, offset, value FROM \"\(job.table)_duplicates\"")
            while try duplicates.step() {
                contents.duplicates.append(DuplicateEntry(partition: Int(duplicates.int64(0)), offset: Int(duplicates.int64(1)),
                                                          value: duplicates.isNull(2) ? nil : duplicates.string(2)))
            }
            try readRejected(db, table: job.table, into: &contents)
            return contents
        }
        let columns = job.pipeline.outputColumns.map { "\"\($0)\"" }.joined(separator: ", ")
        let select = try db.prepare("SELECT \(columns) FROM \"\(job.table)\"")
        let count = Int32(job.pipeline.outputColumns.count)
        while try select.step() {
            var text = String(select.int64(0)) + "," + String(UInt64(bitPattern: select.int64(1)))
            for c in 2..<count {
                text += ","
                text += select.isReal(c) ? "\(select.double(c))" : String(select.int64(c))
            }
            contents.rows.append(text)
        }
        try readRejected(db, table: job.table, into: &contents)
        return contents
    }

    private static func readRejected(_ db: SQLiteDatabase, table: String, into contents: inout SinkContents) throws {
        for (suffix, isLate) in [("late", true), ("dead_letters", false)] {
            let stmt = try db.prepare("SELECT partition, offset, line FROM \"\(table)_\(suffix)\"")
            while try stmt.step() {
                let entry = RejectedEntry(partition: Int(stmt.int64(0)), offset: Int(stmt.int64(1)), line: stmt.string(2))
                if isLate { contents.late.append(entry) } else { contents.deadLetters.append(entry) }
            }
        }
    }

    static func readPostgres(url: PostgresURL, job: JobSpec) throws -> SinkContents {
        let conn = try PostgresConnection(url: url)
        let table = url.options["table"] ?? job.table
        var contents = SinkContents()
        if let records = RecordColumns(job: job) {
            let rows = try conn.execute("SELECT \(records.postgresSelect) FROM \"\(table)\"")
            for r in 0..<rows.count {
                var values: [Value] = []
                for (c, type) in records.types.enumerated().dropFirst() {
                    guard let text = rows.string(r, c) else { values.append(.null); continue }
                    values.append(try RecordColumns.parse(text, as: type, postgres: true, table: table))
                }
                contents.rows.append(RecordText.row(RecordRow(windowStart: try rows.int64(r, 0), values: values)))
            }
            let duplicates = try conn.execute("SELECT partition, \"offset\", value FROM \"\(table)_duplicates\"")
            for r in 0..<duplicates.count {
                contents.duplicates.append(DuplicateEntry(partition: Int(try duplicates.int64(r, 0)),
                                                          offset: Int(try duplicates.int64(r, 1)), value: duplicates.string(r, 2)))
            }
        } else {
        let names = job.pipeline.outputColumns
        let rows = try conn.execute("SELECT \(names.map { "\"\($0)\"" }.joined(separator: ", ")) FROM \"\(table)\"")
        for r in 0..<rows.count {
            var text = String(try rows.int64(r, 0)) + "," + String(UInt64(bitPattern: try rows.int64(r, 1)))
            for c in 2..<names.count {
                text += ","
                if names[c].hasPrefix("avg_") {
                    // The same shortest round-trip text as the oracle's.
                    guard let raw = rows.string(r, c), let d = Double(raw) else { throw SinkError("\(table): unreadable average in row \(r)") }
                    text += "\(d)"
                } else {
                    text += String(try rows.int64(r, c))
                }
            }
            contents.rows.append(text)
        }
        }
        for (suffix, isLate) in [("late", true), ("dead_letters", false)] {
            let found = try conn.execute("SELECT partition, \"offset\", line FROM \"\(table)_\(suffix)\"")
            for r in 0..<found.count {
                let entry = RejectedEntry(partition: Int(try found.int64(r, 0)), offset: Int(try found.int64(r, 1)),
                                          line: found.string(r, 2) ?? "")
                if isLate { contents.late.append(entry) } else { contents.deadLetters.append(entry) }
            }
        }
        return contents
    }

    static func readFiles(directory: String) throws -> SinkContents {
        var contents = SinkContents()
        let fm = FileManager.default
        guard let parts = try? fm.contentsOfDirectory(atPath: directory) else {
            throw SinkError("cannot read sink directory '\(directory)'")
        }
        for part in parts.sorted() where part.hasPrefix("part-") {
            let dir = (directory as NSString).appendingPathComponent(part)
            for name in ((try? fm.contentsOfDirectory(atPath: dir)) ?? []).sorted() where name.hasSuffix(".csv") {
                guard let data = fm.contents(atPath: (dir as NSString).appendingPathComponent(name)) else { continue }
                // Records, not lines: a quoted field (a records job's string, a dead letter's
                // multi-line CSV record) may hold a line end.
                let lines = csvRecords([UInt8](data)).dropFirst()  // header
                if name.hasPrefix("results-") {
                    contents.rows.append(contentsOf: lines.map { String(decoding: $0, as: UTF8.self) })
                } else if name.hasPrefix("duplicates-") {
                    for record in lines {
                        guard let entry = DuplicateRows.parseCSV(record) else {
                            throw SinkError("unreadable line in '\(dir)/\(name)': \(String(decoding: record.prefix(80), as: UTF8.self))")
                        }
                        contents.duplicates.append(entry)
                    }
                } else if name.hasPrefix("late-") || name.hasPrefix("dead-") {
                    for record in lines {
                        let line = Substring(String(decoding: record, as: UTF8.self))
                        guard let entry = RejectedCSV.parse(line) else {
                            throw SinkError("unreadable line in '\(dir)/\(name)': \(line.prefix(80))")
                        }
                        if name.hasPrefix("late-") { contents.late.append(entry) } else { contents.deadLetters.append(entry) }
                    }
                }
            }
        }
        return contents
    }

    /// The records of CSV text (RFC 4180: a line end inside quotes does not end one), without their
    /// line ends; a trailing empty line is not a record.
    static func csvRecords(_ bytes: [UInt8]) -> [[UInt8]] {
        var records: [[UInt8]] = []
        bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            var start = 0
            while start < raw.count {
                let (end, _) = CSVRecords.recordEnd(base, from: start, count: raw.count)
                records.append(Array(raw[start..<end]))
                start = end + 1
            }
        }
        return records
    }
}
