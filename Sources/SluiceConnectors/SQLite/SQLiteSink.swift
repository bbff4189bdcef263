import Foundation
import SluiceCore
import SluiceJob
import SluiceStorage

/// Results in a SQLite table `window_start_ms, <key>, <aggregates…>`, written in the transaction of
/// the checkpoint that covers them (the checkpoint store lives in the same database). Late events
/// and dead letters go to `<table>_late` and `<table>_dead_letters`. Every row carries its partition
/// and checkpoint seq, so output after a corrupt checkpoint can be removed exactly. A records job's
/// columns are typed (`RecordColumns`; uint64 as the INTEGER of its bit pattern, decimal and
/// timestamp as TEXT), and dedupe's dropped events go to `<table>_duplicates`.
public struct SQLiteSink: Sink {
    public let path: String
    public let table: String
    public let columns: [String]
    /// The integer path's rows (nil for a records job, whose rows are typed `records`).
    private let formatter: RowFormatter?
    /// A `changes` job: the table holds change events (ChangeTable), not windowed results.
    private let changes: Bool
    /// A records job: typed rows from `output.records` (nil: the integer path, or changes).
    private let records: RecordColumns?
    /// A `view` job: the table holds the latest row per key (ViewTable).
    private let view: ViewTable?

    private static let rowsPerInsert = 64
    private let insertOne: String
    private let insertMany: String

    public init(path: String, job: JobSpec) {
        self.path = path
        table = job.table
        changes = job.kind == .changes
        columns = changes ? ChangeTable.columns : job.pipeline.outputColumns
        formatter = job.pipeline.isIntegerCSV ? RowFormatter(layout: AggregateLayout(pipeline: job.pipeline)) : nil
        records = RecordColumns(job: job)
        view = ViewTable(job: job, table: job.table)
        let tuple = "(" + Array(repeating: "?", count: columns.count + 2).joined(separator: ", ") + ")"
        insertOne = "INSERT INTO \"\(job.table)\" VALUES \(tuple)"
        insertMany = "INSERT INTO \"\(job.table)\" VALUES " + Array(repeating: tuple, count: SQLiteSink.rowsPerInsert).joined(separator: ", ")
    }

    public var defaultStatePath: String { path }

    public func createTables(in db: SQLiteDatabase) throws {
        // The rows commit in the checkpoint's transaction, so they can only live in the store's
        // database; SQLite cannot commit atomically across two WAL databases.
        guard SQLiteSink.sameFile(db.path, path) else { throw otherStore(db.path) }
        let valueColumns = columns.map { "\"\($0)\"" + ($0.hasPrefix("avg_") ? " REAL" : " INTEGER") }.joined(separator: ", ")
        var results = changes ? ChangeTable.sqliteDDL(table)
            : "CREATE TABLE IF NOT EXISTS \"\(table)\"(\(valueColumns), sluice_partition INTEGER NOT NULL, sluice_seq INTEGER NOT NULL);"
        if let view { results = view.sqliteDDL() }
        if let records {
            results = """
                CREATE TABLE IF NOT EXISTS "\(table)"(\(records.sqliteColumns), sluice_partition INTEGER NOT NULL, sluice_seq INTEGER NOT NULL);
                CREATE TABLE IF NOT EXISTS "\(table)_duplicates"(partition INTEGER NOT NULL, offset INTEGER NOT NULL, value TEXT, sluice_seq INTEGER NOT NULL);
                """
        }
        try db.execute("""
            \(results)
            CREATE TABLE IF NOT EXISTS "\(table)_late"(partition INTEGER NOT NULL, offset INTEGER NOT NULL, reason TEXT NOT NULL, line TEXT NOT NULL, sluice_seq INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS "\(table)_dead_letters"(partition INTEGER NOT NULL, offset INTEGER NOT NULL, reason TEXT NOT NULL, line TEXT NOT NULL, sluice_seq INTEGER NOT NULL);
            """)
    }

    /// Refused before the store opens, so a refused run creates no database.
    public func admit(_ owner: SinkOwner, statePath: String) throws {
        let same = !PostgresURL.isPostgres(statePath) && (SQLiteSink.sameFile(statePath, path)
            || URL(fileURLWithPath: statePath).standardizedFileURL.path == URL(fileURLWithPath: path).standardizedFileURL.path)
        guard same else { throw otherStore(PostgresURL.redact(statePath)) }
    }

    private func otherStore(_ store: String) -> SinkError {
        SinkError("the sqlite sink (\(path)) commits its rows in the checkpoint store's transaction, so --state must be that same database, not '\(store)' (SQLite cannot commit atomically across two databases): drop --state, or give --state \(path)")
    }

    /// Both paths name one existing file (by device and inode, so `./a.db` and `a.db` agree).
    static func sameFile(_ a: String, _ b: String) -> Bool {
        var x = stat(), y = stat()
        guard stat(a, &x) == 0, stat(b, &y) == 0 else { return false }
        return x.st_dev == y.st_dev && x.st_ino == y.st_ino
    }

    public func stage(_ output: PartitionOutput, partition: Int, epoch: Int64, seq: Int64) throws -> [String] { [] }
    public func publish(files: [String], partition: Int, epoch: Int64) throws {}
    public func recover(partition: Int, last: Checkpoint?) throws {}

    public func write(_ output: PartitionOutput, partition: Int, seq: Int64, in db: SQLiteDatabase) throws {
        try ChangeTable.writeSQLite(output.changes, table: table, partition: partition, seq: seq, in: db)
        try view?.writeSQLite(output.viewChanges, partition: partition, seq: seq, in: db)
        if records != nil { try writeRecords(output, partition: partition, seq: seq, in: db) }
        let rows = output.rows
        if let formatter, !rows.isEmpty { try writeRows(rows, formatter: formatter, partition: partition, seq: seq, in: db) }
        for (suffix, lines) in [("late", output.late), ("dead_letters", output.deadLetters)] where !lines.isEmpty {
            let insert = try db.prepare("INSERT INTO \"\(table)_\(suffix)\" VALUES (?, ?, ?, ?, ?)")
            for line in lines {
                try insert.bind(1, Int64(partition)).bind(2, line.offset).bind(3, line.reason).bind(4, line.line)
                    .bind(5, seq).run()
            }
        }
    }

    /// The integer path's rows.
    private func writeRows(_ rows: RowBuffer, formatter: RowFormatter, partition: Int, seq: Int64, in db: SQLiteDatabase) throws {
        // Rows go in 64 at a time: one statement execution per 64 rows costs far less than 64.
        let columnsPerRow = columns.count + 2
        let aggregates = formatter.layout.outputs.count
        var row = 0
        // Prepared once per commit (a lookup hashes the whole long SQL), reset per execution.
        let many = try db.prepare(insertMany)
        while row < rows.count {
            let n = rows.count - row >= SQLiteSink.rowsPerInsert ? SQLiteSink.rowsPerInsert : 1
            let insert = n == 1 ? try db.prepare(insertOne) : many
            insert.reset()
            for r in row..<(row + n) {
                let base = Int32((r - row) * columnsPerRow)
                insert.bind(base + 1, rows.starts[r]).bind(base + 2, Int64(bitPattern: rows.keys[r]))
                for a in 0..<aggregates {
                    switch formatter.value(rows, row: r, aggregate: a) {
                    case .integer(let v): insert.bind(base + Int32(3 + a), v)
                    case .real(let d): insert.bind(base + Int32(3 + a), d)
                    }
                }
                insert.bind(base + Int32(3 + aggregates), Int64(partition)).bind(base + Int32(4 + aggregates), seq)
            }
            try insert.run()
            row += n
        }
    }

    /// A records job's typed rows and duplicates (the integer path's rows stay in `write`).
    private func writeRecords(_ output: PartitionOutput, partition: Int, seq: Int64, in db: SQLiteDatabase) throws {
        if !output.records.isEmpty {
            let count = columns.count
            let tuple = Array(repeating: "?", count: count + 2).joined(separator: ", ")
            let insert = try db.prepare("INSERT INTO \"\(table)\" VALUES (\(tuple))")
            for row in output.records {
                guard row.values.count == count - 1 else {
                    throw SinkError("\(table): a row with \(row.values.count + 1) values for \(count) columns")
                }
                insert.bind(1, row.windowStart)
                for (i, value) in row.values.enumerated() { RecordColumns.bind(value, at: Int32(i + 2), to: insert) }
                try insert.bind(Int32(count + 1), Int64(partition)).bind(Int32(count + 2), seq).run()
            }
        }
        if !output.duplicates.isEmpty {
            let insert = try db.prepare("INSERT INTO \"\(table)_duplicates\" VALUES (?, ?, ?, ?)")
            for duplicate in output.duplicates {
                try insert.bind(1, Int64(partition)).bind(2, duplicate.offset).bind(3, DuplicateRows.text(duplicate.value))
                    .bind(4, seq).run()
            }
        }
    }

    public func discard(partition: Int, after seq: Int64, in db: SQLiteDatabase) throws {
        if let view {
            try view.discardSQLite(partition: partition, after: seq, in: db)
        } else {
            try db.prepare("DELETE FROM \"\(table)\" WHERE sluice_partition = ? AND sluice_seq > ?")
                .bind(1, Int64(partition)).bind(2, seq).run()
        }
        for suffix in ["late", "dead_letters"] + (records == nil ? [] : ["duplicates"]) {
            try db.prepare("DELETE FROM \"\(table)_\(suffix)\" WHERE partition = ? AND sluice_seq > ?")
                .bind(1, Int64(partition)).bind(2, seq).run()
        }
    }
}
