import SluiceCore
import SluiceJob
import SluiceStorage

/// Results in a SQLite table `window_start_ms, <key>, <aggregates…>`, written in the transaction of
/// the checkpoint that covers them (the checkpoint store lives in the same database). Late events
/// and dead letters go to `<table>_late` and `<table>_dead_letters`. Every row carries its partition
/// and checkpoint seq, so output after a corrupt checkpoint can be removed exactly.
public struct SQLiteSink: Sink {
    public let path: String
    public let table: String
    public let columns: [String]
    private let formatter: RowFormatter

    public init(path: String, job: JobSpec) {
        self.path = path
        table = job.table
        columns = job.pipeline.outputColumns
        formatter = RowFormatter(layout: AggregateLayout(pipeline: job.pipeline))
    }

    public var defaultStatePath: String { path }

    public func createTables(in db: SQLiteDatabase) throws {
        let valueColumns = columns.map { "\"\($0)\"" + ($0.hasPrefix("avg_") ? " REAL" : " INTEGER") }.joined(separator: ", ")
        try db.execute("""
            CREATE TABLE IF NOT EXISTS "\(table)"(\(valueColumns), sluice_partition INTEGER NOT NULL, sluice_seq INTEGER NOT NULL);
            CREATE INDEX IF NOT EXISTS "\(table)_commit" ON "\(table)"(sluice_partition, sluice_seq);
            CREATE TABLE IF NOT EXISTS "\(table)_late"(partition INTEGER NOT NULL, offset INTEGER NOT NULL, reason TEXT NOT NULL, line TEXT NOT NULL, sluice_seq INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS "\(table)_dead_letters"(partition INTEGER NOT NULL, offset INTEGER NOT NULL, reason TEXT NOT NULL, line TEXT NOT NULL, sluice_seq INTEGER NOT NULL);
            """)
    }

    public func stage(_ output: PartitionOutput, partition: Int, epoch: Int64, seq: Int64) throws -> [String] { [] }
    public func publish(files: [String], partition: Int, epoch: Int64) throws {}
    public func recover(partition: Int, last: Checkpoint?) throws {}

    public func write(_ output: PartitionOutput, partition: Int, seq: Int64, in db: SQLiteDatabase) throws {
        let rows = output.rows
        if !rows.isEmpty {
            let placeholders = Array(repeating: "?", count: columns.count + 2).joined(separator: ", ")
            let insert = try db.prepare("INSERT INTO \"\(table)\" VALUES (\(placeholders))")
            let aggregates = formatter.layout.outputs.count
            for row in 0..<rows.count {
                insert.bind(1, rows.starts[row]).bind(2, Int64(bitPattern: rows.keys[row]))
                for a in 0..<aggregates {
                    switch formatter.value(rows, row: row, aggregate: a) {
                    case .integer(let v): insert.bind(Int32(3 + a), v)
                    case .real(let d): insert.bind(Int32(3 + a), d)
                    }
                }
                insert.bind(Int32(3 + aggregates), Int64(partition)).bind(Int32(4 + aggregates), seq)
                try insert.run()
            }
        }
        for (suffix, lines) in [("late", output.late), ("dead_letters", output.deadLetters)] where !lines.isEmpty {
            let insert = try db.prepare("INSERT INTO \"\(table)_\(suffix)\" VALUES (?, ?, ?, ?, ?)")
            for line in lines {
                try insert.bind(1, Int64(partition)).bind(2, line.offset).bind(3, line.reason).bind(4, line.line)
                    .bind(5, seq).run()
            }
        }
    }

    public func discard(partition: Int, after seq: Int64, in db: SQLiteDatabase) throws {
        try db.prepare("DELETE FROM \"\(table)\" WHERE sluice_partition = ? AND sluice_seq > ?")
            .bind(1, Int64(partition)).bind(2, seq).run()
        for suffix in ["late", "dead_letters"] {
            try db.prepare("DELETE FROM \"\(table)_\(suffix)\" WHERE partition = ? AND sluice_seq > ?")
                .bind(1, Int64(partition)).bind(2, seq).run()
        }
    }
}
