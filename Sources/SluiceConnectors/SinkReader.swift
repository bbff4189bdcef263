import Foundation
import SluiceJob
import SluiceStorage

/// Reads back what a sink committed, as text rows and rejected lines, for `sluice verify`.
public struct SinkContents: Sendable {
    public var rows: [String] = []
    public var late: [RejectedEntry] = []
    public var deadLetters: [RejectedEntry] = []
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
        for (suffix, isLate) in [("late", true), ("dead_letters", false)] {
            let stmt = try db.prepare("SELECT partition, offset, line FROM \"\(job.table)_\(suffix)\"")
            while try stmt.step() {
                let entry = RejectedEntry(partition: Int(stmt.int64(0)), offset: Int(stmt.int64(1)), line: stmt.string(2))
                if isLate { contents.late.append(entry) } else { contents.deadLetters.append(entry) }
            }
        }
        return contents
    }

    static func readPostgres(url: PostgresURL, job: JobSpec) throws -> SinkContents {
        let conn = try PostgresConnection(url: url)
        let table = url.options["table"] ?? job.table
        var contents = SinkContents()
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
                let lines = String(decoding: data, as: UTF8.self).split(separator: "\n").dropFirst()  // header
                if name.hasPrefix("results-") {
                    contents.rows.append(contentsOf: lines.map(String.init))
                } else if name.hasPrefix("late-") || name.hasPrefix("dead-") {
                    for line in lines {
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
}
