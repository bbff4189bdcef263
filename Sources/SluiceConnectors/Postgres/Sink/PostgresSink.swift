// Postgres/Sink/: the `postgres://` sink connector: the sink (this file) and its URI and
// read-back (PostgresSinkConnector.swift). Its checkpoint store defaults to the same database.

import Logging
import Foundation
import SluiceCore
import SluiceJob
import SluiceStorage
import Synchronization

/// Results in a PostgreSQL table (the job's `table`, or `?table=NAME` in the URL), with late events
/// and dead letters in `<table>_late` and `<table>_dead_letters`.
///
/// - `mode=transactional` (the default): rows are COPYed inside the checkpoint's transaction, so
///   they exist exactly once and only once the checkpoint covering them commits. The checkpoint
///   store must therefore be this same database (the default `--state`). Rows carry their
///   partition and checkpoint seq, as in the SQLite sink.
/// - `mode=upsert`: rows are upserted on (window_start_ms, key) in a transaction of their own just
///   before the checkpoint's, so they are visible before it commits. A crash or a zombie writes the
///   same rows again (replay is deterministic), which overwrites them with identical values:
///   at-least-once delivery, idempotent result. Late events and dead letters are keyed by
///   (partition, offset) and inserted once.
///
/// A records job's columns are typed (`RecordColumns`: `numeric(38,scale)`, `timestamptz`,
/// `boolean`, `bigint`, uint64 as `numeric(20,0)`, `double precision`, `text`), its upsert key is
/// `window_start_ms` and the key columns, and dedupe's dropped events go to `<table>_duplicates`.
public struct PostgresSink: Sink {
    public enum Mode: String, Sendable { case transactional, upsert }

    public let url: PostgresURL
    public let table: String
    public let mode: Mode
    private let columns: [String]
    /// The integer path's rows (nil for a records job, whose rows are typed `records`).
    private let formatter: RowFormatter?
    private let upserts: UpsertConnection?
    /// A `changes` job: the table holds change events (ChangeTable), not windowed results.
    private let changes: Bool
    /// A records job: typed rows from `output.records` (nil: the integer path, or changes).
    private let records: RecordColumns?
    /// A `view` job: the table holds the latest row per key (ViewTable).
    private let view: ViewTable?

    public init(url: PostgresURL, job: JobSpec, logger: Logger = .silent) throws {
        self.url = url
        table = url.options["table"] ?? job.table
        guard SQLIdentifier.isPlain(table) else {
            throw SinkError("sink \(url.redacted): table '\(table)' is not a valid name; use letters, digits and _ (not starting with a digit)")
        }
        if let problem = TableNames.problem(table) { throw SinkError("sink \(url.redacted): ?table=: \(problem)") }
        guard let mode = Mode(rawValue: url.options["mode"] ?? "transactional") else {
            throw SinkError("sink \(url.redacted): unknown mode '\(url.options["mode"] ?? "")'; expected transactional or upsert")
        }
        self.mode = mode
        changes = job.kind == .changes
        if changes && mode == .upsert {
            throw SinkError("sink \(url.redacted): mode=upsert keys windowed results; a job of kind changes writes its events exactly once in the checkpoint's transaction: drop mode=upsert")
        }
        if job.kind == .view && mode == .upsert {
            throw SinkError("sink \(url.redacted): a job of kind view upserts its rows exactly once in the checkpoint's transaction already: drop mode=upsert")
        }
        view = ViewTable(job: job, table: table)
        columns = changes ? ChangeTable.columns : job.pipeline.outputColumns
        formatter = job.pipeline.isIntegerCSV ? RowFormatter(layout: AggregateLayout(pipeline: job.pipeline)) : nil
        records = RecordColumns(job: job)
        upserts = mode == .upsert ? UpsertConnection(PostgresSession(url: url, name: "upsert sink", logger: logger)) : nil
    }


    /// The index of a transactional table's `(sluice_partition, sluice_seq)`. It serves only a
    /// roll-back's `DELETE … WHERE sluice_partition = $1 AND sluice_seq > $2` (after a corrupt
    /// newest checkpoint: rare). A B-tree on every row doubled the server's cost of each COPY; a
    /// BRIN index (min/max per range of pages) costs next to nothing, and since rows arrive in seq
    /// order it points the delete at the table's tail. Tables made by older versions lose their
    /// B-tree here.
    static func seqIndex(_ table: String) -> String {
        """
        DROP INDEX IF EXISTS "\(table)_sluice_seq";
        CREATE INDEX IF NOT EXISTS "\(table)_sluice_seq_brin" ON "\(table)" USING brin (sluice_partition, sluice_seq);
        """
    }

    /// The checkpoint store lives in the same database (without Sluice's `table`/`mode` options).
    public var defaultStatePath: String { url.connectionString }

    // MARK: CommitWriter (PostgreSQL)

    public func createTables(in pg: PostgresConnection) throws {
        guard pg.url.target == url.target else {
            throw SinkError("the postgres sink (\(url.redacted)) commits in the checkpoint store's transaction, so the store must be the same database; it is \(pg.url.redacted): drop --state, or point it at the sink's database")
        }
        let values = records?.postgresColumns ?? columns.enumerated().map { i, name in
            "\"\(name)\" " + (name.hasPrefix("avg_") && i >= 2 ? "double precision" : "bigint") + " NOT NULL"
        }.joined(separator: ", ")
        let key = upsertKey
        let duplicates = records == nil ? "" : """
            CREATE TABLE IF NOT EXISTS "\(table)_duplicates"(partition integer NOT NULL, "offset" bigint NOT NULL, value text, sluice_seq bigint NOT NULL\(mode == .upsert ? ", PRIMARY KEY(partition, \"offset\")" : ""));
            """
        let results = view?.postgresDDL() ?? (changes ? ChangeTable.postgresDDL(table) : """
            CREATE TABLE IF NOT EXISTS "\(table)"(\(values), sluice_partition integer NOT NULL, sluice_seq bigint NOT NULL);
            \(PostgresSink.seqIndex(table))
            """)
        switch mode {
        case .transactional:
            try pg.execute("""
                \(results)
                CREATE TABLE IF NOT EXISTS "\(table)_late"(partition integer NOT NULL, "offset" bigint NOT NULL, reason text NOT NULL, line text NOT NULL, sluice_seq bigint NOT NULL);
                CREATE TABLE IF NOT EXISTS "\(table)_dead_letters"(partition integer NOT NULL, "offset" bigint NOT NULL, reason text NOT NULL, line text NOT NULL, sluice_seq bigint NOT NULL);
                \(duplicates)
                """)
        case .upsert:
            try pg.execute("""
                CREATE TABLE IF NOT EXISTS "\(table)"(\(values), sluice_partition integer NOT NULL, sluice_seq bigint NOT NULL,
                    PRIMARY KEY(\(key)));
                CREATE TABLE IF NOT EXISTS "\(table)_late"(partition integer NOT NULL, "offset" bigint NOT NULL, reason text NOT NULL, line text NOT NULL, sluice_seq bigint NOT NULL, PRIMARY KEY(partition, "offset"));
                CREATE TABLE IF NOT EXISTS "\(table)_dead_letters"(partition integer NOT NULL, "offset" bigint NOT NULL, reason text NOT NULL, line text NOT NULL, sluice_seq bigint NOT NULL, PRIMARY KEY(partition, "offset"));
                \(duplicates)
                """)
        }
    }

    public func write(_ output: PartitionOutput, partition: Int, seq: Int64, in pg: PostgresConnection) throws {
        guard mode == .transactional else { return }  // upserted in `stage`
        try ChangeTable.copyPostgres(output.changes, table: table, partition: partition, seq: seq, in: pg)
        try view?.writePostgres(output.viewChanges, partition: partition, seq: seq, in: pg)
        try copy(output, partition: partition, seq: seq, into: "", in: pg)
    }

    public func discard(partition: Int, after seq: Int64, in pg: PostgresConnection) throws {
        // Upsert mode keeps its rows: the replay writes the same ones again.
        guard mode == .transactional else { return }
        if let view {
            try view.discardPostgres(partition: partition, after: seq, in: pg)
        } else {
            try pg.execute("DELETE FROM \"\(table)\" WHERE sluice_partition = $1 AND sluice_seq > $2", [.int(Int64(partition)), .int(seq)])
        }
        for suffix in rejectedSuffixes {
            try pg.execute("DELETE FROM \"\(table)_\(suffix)\" WHERE partition = $1 AND sluice_seq > $2", [.int(Int64(partition)), .int(seq)])
        }
    }

    // MARK: CommitWriter (SQLite): refused

    public func createTables(in db: SQLiteDatabase) throws {
        throw SinkError("the postgres sink (\(url.redacted)) commits in the checkpoint store's transaction, so it needs its PostgreSQL database as the store, not the SQLite file '\(db.path)': drop --state, or give a postgres:// URL")
    }
    public func write(_ output: PartitionOutput, partition: Int, seq: Int64, in db: SQLiteDatabase) throws { try createTables(in: db) }
    public func discard(partition: Int, after seq: Int64, in db: SQLiteDatabase) throws { try createTables(in: db) }

    // MARK: Sink

    /// A SQLite --state is refused before it is created (a different database: in `createTables`).
    public func admit(_ owner: SinkOwner, statePath: String) throws {
        guard PostgresURL.isPostgres(statePath) else {
            throw SinkError("the postgres sink (\(url.redacted)) commits in the checkpoint store's transaction, so it needs its PostgreSQL database as the store, not the SQLite file '\(statePath)': drop --state, or give a postgres:// URL")
        }
    }

    public func stage(_ output: PartitionOutput, partition: Int, epoch: Int64, seq: Int64) throws -> [String] {
        guard let upserts, !output.isEmpty else { return [] }
        try upserts.withSession { session in
            try session.run { pg, _ in
                try pg.transaction {
                    // Temporary tables vanish with a lost connection: create them in every transaction.
                    for suffix in [""] + rejectedSuffixes.map({ "_\($0)" }) {
                        try pg.execute("CREATE TEMP TABLE IF NOT EXISTS \"sluice_stage\(suffix)\" (LIKE \"\(table)\(suffix)\") ON COMMIT DELETE ROWS")
                    }
                    try copy(output, partition: partition, seq: seq, into: "sluice_stage", in: pg)
                    let key = upsertKey
                    let updates = (columns.dropFirst(records?.keyCount ?? 2).map { "\"\($0)\" = excluded.\"\($0)\"" }
                                   + ["sluice_partition = excluded.sluice_partition", "sluice_seq = excluded.sluice_seq"]).joined(separator: ", ")
                    try pg.execute("INSERT INTO \"\(table)\" SELECT * FROM \"sluice_stage\" ON CONFLICT (\(key)) DO UPDATE SET \(updates)")
                    for suffix in rejectedSuffixes.map({ "_\($0)" }) {
                        try pg.execute("INSERT INTO \"\(table)\(suffix)\" SELECT * FROM \"sluice_stage\(suffix)\" ON CONFLICT DO NOTHING")
                    }
                }
            }
        }
        return []
    }

    public func publish(files: [String], partition: Int, epoch: Int64) throws {}
    public func recover(partition: Int, last: Checkpoint?) throws {}

    /// What identifies a row in upsert mode: `window_start_ms` and the key column(s).
    private var upsertKey: String {
        columns.prefix(records?.keyCount ?? 2).map { "\"\($0)\"" }.joined(separator: ", ")
    }

    /// The tables beside the results, as `<table>_<suffix>`.
    private var rejectedSuffixes: [String] { ["late", "dead_letters"] + (records == nil ? [] : ["duplicates"]) }

    /// COPYs the output into `"<prefix or table>"`, `…_late` and `…_dead_letters`.
    private func copy(_ output: PartitionOutput, partition: Int, seq: Int64, into prefix: String, in pg: PostgresConnection) throws {
        let base = prefix.isEmpty ? table : prefix
        let rows = output.rows
        if let formatter, !rows.isEmpty {
            let aggregates = formatter.layout.outputs.count
            try pg.copyIn(into: base, columns: columns + ["sluice_partition", "sluice_seq"]) { out in
                for r in 0..<rows.count {
                    out.int(rows.starts[r])
                    out.int(Int64(bitPattern: rows.keys[r]))
                    for a in 0..<aggregates {
                        switch formatter.value(rows, row: r, aggregate: a) {
                        case .integer(let v): out.int(v)
                        case .real(let d): out.double(d)
                        }
                    }
                    out.int32(Int32(partition))
                    out.int(seq)
                    try out.endRow()
                }
            }
        }
        if let records, !output.records.isEmpty {
            try pg.copyIn(into: base, columns: columns + ["sluice_partition", "sluice_seq"]) { out in
                for row in output.records {
                    guard row.values.count == records.names.count - 1 else {
                        throw SinkError("\(table): a row with \(row.values.count + 1) values for \(records.names.count) columns")
                    }
                    out.int(row.windowStart)
                    for value in row.values { try RecordColumns.copy(value, to: &out, table: table) }
                    out.int32(Int32(partition))
                    out.int(seq)
                    try out.endRow()
                }
            }
        }
        if records != nil, !output.duplicates.isEmpty {
            try pg.copyIn(into: "\(base)_duplicates", columns: DuplicateRows.columns) { out in
                for duplicate in output.duplicates {
                    out.int32(Int32(partition))
                    out.int(duplicate.offset)
                    if let text = DuplicateRows.text(duplicate.value) { out.text(text) } else { out.null() }
                    out.int(seq)
                    try out.endRow()
                }
            }
        }
        for (suffix, lines) in [("late", output.late), ("dead_letters", output.deadLetters)] where !lines.isEmpty {
            try pg.copyIn(into: "\(base)_\(suffix)", columns: ["partition", "offset", "reason", "line", "sluice_seq"]) { out in
                for line in lines {
                    out.int32(Int32(partition))
                    out.int(line.offset)
                    out.text(line.reason)
                    out.text(line.line)
                    out.int(seq)
                    try out.endRow()
                }
            }
        }
    }
}

/// The upsert mode's own connection, shared by the partitions of a process one at a time (the
/// lock is what makes the unchecked Sendable true).
final class UpsertConnection: Sendable {
    private let session: Mutex<PostgresSession>

    init(_ session: sending PostgresSession) { self.session = Mutex(session) }

    func withSession(_ body: (PostgresSession) throws -> Void) throws {
        try session.withLock { try body($0) }
    }
}
