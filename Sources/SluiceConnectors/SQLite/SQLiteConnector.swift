// SQLite/: the `sqlite:PATH` connector, a sink only: rows written in the checkpoint's own
// transaction (SQLiteSink.swift), so the checkpoint store is that same database (its default, and
// the only `--state` it admits); read back from its tables for `sluice verify`.

import Foundation
import Logging
import SluiceCore
import SluiceJob
import SluiceStorage

struct SQLiteConnector: SinkConnector {
    var usage: String { "sqlite:PATH" }

    func claims(_ uri: String) -> Bool { uri.hasPrefix("sqlite:") }
    var keepsViews: Bool { true }

    static func path(_ uri: String) throws -> String {
        let path = String(uri.dropFirst(7))
        guard !path.isEmpty else { throw SinkError("sink '\(uri)': no database path; write sqlite:PATH") }
        return path
    }

    func openSink(uri: String, job: JobSpec, logger: Logger) throws -> any Sink {
        let path = try SQLiteConnector.path(uri)
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty { try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true) }
        return SQLiteSink(path: path, job: job)
    }

    func validateSink(uri: String, job: JobSpec) throws {
        _ = try SQLiteConnector.path(uri)
    }

    func sinkIdentity(_ uri: String) -> String {
        "sqlite:" + StoreBinding.absolute(String(uri.dropFirst(7)))
    }

    func readBack(uri: String, job: JobSpec, statePath: String?) throws -> SinkContents {
        try SQLiteSink.readBack(path: String(uri.dropFirst(7)), job: job)
    }
}

extension SQLiteSink {
    /// The committed rows (a records job's as `RecordText.row`), late events, dead letters and
    /// duplicates.
    static func readBack(path: String, job: JobSpec) throws -> SinkContents {
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
        } else {
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
}
