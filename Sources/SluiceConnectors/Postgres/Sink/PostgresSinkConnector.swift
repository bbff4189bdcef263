// The `postgres://USER@HOST:PORT/DB[?table=NAME][&mode=transactional|upsert]` sink connector: its
// URI (PostgresSink's init validates `table` and `mode`), the sink, and its read-back.

import Logging
import SluiceCore
import SluiceJob
import SluiceStorage

struct PostgresSinkConnector: SinkConnector {
    var usage: String { "postgres://USER@HOST:PORT/DBNAME" }

    func claims(_ uri: String) -> Bool { PostgresURL.isPostgres(uri) }
    var keepsViews: Bool { true }

    func openSink(uri: String, job: JobSpec, logger: Logger) throws -> any Sink {
        try PostgresSink(url: PostgresURL(uri), job: job, logger: logger)
    }

    func validateSink(uri: String, job: JobSpec) throws {
        _ = try PostgresSink(url: PostgresURL(uri), job: job)  // connects lazily
    }

    func sinkIdentity(_ uri: String) -> String {
        guard let url = try? PostgresURL(uri) else { return uri }
        var text = "postgres:\(StoreBinding.database(url))"
        if let table = url.options["table"] { text += "/\(table)" }
        return text + "?mode=\(url.options["mode"] ?? "transactional")"
    }

    func readBack(uri: String, job: JobSpec, statePath: String?) throws -> SinkContents {
        try PostgresSink.readBack(url: PostgresURL(uri), job: job)
    }
}

extension PostgresSink {
    /// The committed rows (a records job's as `RecordText.row`: numeric at the column's scale,
    /// timestamps through epoch milliseconds), late events, dead letters and duplicates.
    static func readBack(url: PostgresURL, job: JobSpec) throws -> SinkContents {
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
}
