import Foundation
import SluiceCore
import SluiceJob
import SluiceStorage

/// The table a job of kind `view` keeps, in the SQLite and PostgreSQL sinks (docs/DESIGN.md,
/// "Views"): the view's columns (the schema's fields, then the derived ones, typed as
/// `RecordColumns` types them), `sluice_partition` and `sluice_seq` (the commit that last wrote the
/// row), primary key the job's key. Upserts and deletes commit in the checkpoint's transaction.
///
/// Undo: a fallback past a corrupt newest checkpoint must put the view back as the older
/// checkpoint saw it, and deleting rows by seq cannot undo an upsert or a delete. So each commit
/// first records, in `<table>_undo`, the prior image of every key it changes (`sluice_present` 0:
/// the key had no row); `discard` restores the images of the commits it drops. The store keeps a
/// partition's two newest checkpoints and falls back to the older one or to nothing, so undo rows
/// of the two newest commits are kept and older ones deleted.
struct ViewTable: Sendable {
    let table: String
    let names: [String]
    let types: [ValueType]
    let keyNames: [String]

    init?(job: JobSpec, table: String) {
        guard job.kind == .view else { return nil }
        self.table = table
        let fields = job.pipeline.recordFields
        names = fields.map(\.name)
        types = fields.map(\.type)
        keyNames = job.pipeline.keyFields
    }

    private var undo: String { "\(table)_undo" }
    private func quoted(_ names: [String], prefix: String = "") -> String { names.map { "\(prefix)\"\($0)\"" }.joined(separator: ", ") }
    private var updates: String {
        (names.filter { !keyNames.contains($0) } + ["sluice_partition", "sluice_seq"])
            .map { "\"\($0)\" = excluded.\"\($0)\"" }.joined(separator: ", ")
    }
    private func keyMatch(_ a: String, _ b: String) -> String { keyNames.map { "\(a).\"\($0)\" = \(b).\"\($0)\"" }.joined(separator: " AND ") }
    private var keyParameters: String { keyNames.map { "\"\($0)\" = ?" }.joined(separator: " AND ") }

    // MARK: SQLite

    func sqliteDDL() -> String {
        let columns = zip(names, types).map { name, type in
            "\"\(name)\" \(RecordColumns.sqliteType(type))" + (keyNames.contains(name) ? " NOT NULL" : "")
        }.joined(separator: ", ")
        let undoColumns = zip(names, types).map { "\"\($0)\" \(RecordColumns.sqliteType($1))" }.joined(separator: ", ")
        return """
            CREATE TABLE IF NOT EXISTS "\(table)"(\(columns), sluice_partition INTEGER NOT NULL, sluice_seq INTEGER NOT NULL,
                PRIMARY KEY(\(quoted(keyNames))));
            CREATE TABLE IF NOT EXISTS "\(undo)"(sluice_partition INTEGER NOT NULL, sluice_seq INTEGER NOT NULL,
                sluice_present INTEGER NOT NULL, sluice_prior_seq INTEGER, \(undoColumns));
            CREATE INDEX IF NOT EXISTS "\(undo)_seq" ON "\(undo)"(sluice_partition, sluice_seq);
            """
    }

    func writeSQLite(_ changes: [ViewChange], partition: Int, seq: Int64, in db: SQLiteDatabase) throws {
        guard !changes.isEmpty else { return }
        let p = Int64(partition)
        let count = Int32(names.count)
        let saveRow = try db.prepare("""
            INSERT INTO "\(undo)" SELECT ?, ?, 1, sluice_seq, \(quoted(names)) FROM "\(table)" WHERE \(keyParameters)
            """)
        let saveAbsent = try db.prepare("""
            INSERT INTO "\(undo)"(sluice_partition, sluice_seq, sluice_present, \(quoted(keyNames)))
            VALUES (?, ?, 0, \(Array(repeating: "?", count: keyNames.count).joined(separator: ", ")))
            """)
        let upsert = try sqliteUpsert(db)
        let delete = try sqliteDelete(db)
        for change in changes {
            guard change.key.count == keyNames.count, change.row.map({ $0.count == names.count }) ?? true else {
                throw SinkError("\(table): a view change with \(change.key.count) key parts and \(change.row?.count ?? 0) values for \(keyNames.count) key columns and \(names.count) columns")
            }
            saveRow.bind(1, p).bind(2, seq)
            for (i, part) in change.key.enumerated() { RecordColumns.bind(part, at: Int32(3 + i), to: saveRow) }
            try saveRow.run()
            if db.changes == 0 {
                saveAbsent.bind(1, p).bind(2, seq)
                for (i, part) in change.key.enumerated() { RecordColumns.bind(part, at: Int32(3 + i), to: saveAbsent) }
                try saveAbsent.run()
            }
            if let row = change.row {
                for (i, value) in row.enumerated() { RecordColumns.bind(value, at: Int32(1 + i), to: upsert) }
                try upsert.bind(count + 1, p).bind(count + 2, seq).run()
            } else {
                for (i, part) in change.key.enumerated() { RecordColumns.bind(part, at: Int32(1 + i), to: delete) }
                try delete.run()
            }
        }
        try db.prepare("DELETE FROM \"\(undo)\" WHERE sluice_partition = ? AND sluice_seq < ?").bind(1, p).bind(2, seq - 1).run()
    }

    /// Sets a key's row: its values, then `sluice_partition` and `sluice_seq`.
    private func sqliteUpsert(_ db: SQLiteDatabase) throws -> SQLiteStatement {
        try db.prepare("""
            INSERT INTO "\(table)" VALUES (\(Array(repeating: "?", count: names.count + 2).joined(separator: ", ")))
            ON CONFLICT(\(quoted(keyNames))) DO UPDATE SET \(updates)
            """)
    }

    /// Deletes a key's row: the key's parts.
    private func sqliteDelete(_ db: SQLiteDatabase) throws -> SQLiteStatement {
        try db.prepare("DELETE FROM \"\(table)\" WHERE \(keyParameters)")
    }

    /// Puts the partition's rows back as commit `seq` left them (0: none).
    func discardSQLite(partition: Int, after seq: Int64, in db: SQLiteDatabase) throws {
        let p = Int64(partition)
        if seq == 0 {
            try db.prepare("DELETE FROM \"\(table)\" WHERE sluice_partition = ?").bind(1, p).run()
            try db.prepare("DELETE FROM \"\(undo)\" WHERE sluice_partition = ?").bind(1, p).run()
            return
        }
        try checkUndoCovers(oldest: {
            let q = try db.prepare("SELECT COALESCE(MIN(sluice_seq), 0) FROM \"\(undo)\" WHERE sluice_partition = ?").bind(1, p)
            defer { q.reset() }
            _ = try q.step()
            return q.int64(0)
        }(), after: seq, partition: partition)
        // Newest first, so that the image a key ends with is the one of the first commit after `seq`.
        let images = try db.prepare("""
            SELECT sluice_present, sluice_prior_seq, \(quoted(names)) FROM "\(undo)"
            WHERE sluice_partition = ? AND sluice_seq > ? ORDER BY sluice_seq DESC
            """).bind(1, p).bind(2, seq)
        var restores: [(present: Bool, priorSeq: Int64, values: [Value])] = []
        while try images.step() {
            var values: [Value] = []
            for (i, type) in types.enumerated() {
                values.append(try RecordColumns.read(images, column: Int32(2 + i), as: type, table: undo))
            }
            restores.append((images.int64(0) != 0, images.int64(1), values))
        }
        let count = Int32(names.count)
        let upsert = try sqliteUpsert(db)
        let delete = try sqliteDelete(db)
        let keyAt = keyNames.map { name in names.firstIndex(of: name) ?? 0 }
        for restore in restores {
            if restore.present {
                for (i, value) in restore.values.enumerated() { RecordColumns.bind(value, at: Int32(1 + i), to: upsert) }
                try upsert.bind(count + 1, p).bind(count + 2, restore.priorSeq).run()
            } else {
                for (i, at) in keyAt.enumerated() { RecordColumns.bind(restore.values[at], at: Int32(1 + i), to: delete) }
                try delete.run()
            }
        }
        try db.prepare("DELETE FROM \"\(undo)\" WHERE sluice_partition = ? AND sluice_seq > ?").bind(1, p).bind(2, seq).run()
    }

    /// The undo log holds every commit after `seq` (it keeps the two newest; the store falls back
    /// at most one checkpoint). A gap would restore a wrong view: refuse instead.
    private func checkUndoCovers(oldest: Int64, after seq: Int64, partition: Int) throws {
        guard oldest == 0 || oldest <= seq + 1 else {
            throw SinkError("\(table): partition \(partition) cannot fall back to checkpoint \(seq): the view's undo log starts at commit \(oldest)")
        }
    }

    // MARK: PostgreSQL

    func postgresDDL() -> String {
        let columns = zip(names, types).map { name, type in
            "\"\(name)\" \(RecordColumns.postgresType(type))" + (keyNames.contains(name) ? " NOT NULL" : "")
        }.joined(separator: ", ")
        let undoColumns = zip(names, types).map { "\"\($0)\" \(RecordColumns.postgresType($1))" }.joined(separator: ", ")
        return """
            CREATE TABLE IF NOT EXISTS "\(table)"(\(columns), sluice_partition integer NOT NULL, sluice_seq bigint NOT NULL,
                PRIMARY KEY(\(quoted(keyNames))));
            CREATE TABLE IF NOT EXISTS "\(undo)"(sluice_partition integer NOT NULL, sluice_seq bigint NOT NULL,
                sluice_present boolean NOT NULL, sluice_prior_seq bigint, \(undoColumns));
            CREATE INDEX IF NOT EXISTS "\(undo)_seq" ON "\(undo)"(sluice_partition, sluice_seq);
            """
    }

    /// Set-based: the commit's changes are COPYed into a temporary table, then one statement each
    /// saves the prior images, deletes, and upserts (a round trip per key would cap the rate at the
    /// server's latency).
    func writePostgres(_ changes: [ViewChange], partition: Int, seq: Int64, in pg: PostgresConnection) throws {
        guard !changes.isEmpty else { return }
        let stage = "sluice_view_stage"
        // Temporary tables vanish with a lost connection: create it in every transaction.
        try pg.execute("""
            CREATE TEMP TABLE IF NOT EXISTS "\(stage)"(LIKE "\(table)", sluice_present boolean NOT NULL) ON COMMIT DELETE ROWS
            """)
        let keyAt = keyNames.map { name in names.firstIndex(of: name) ?? 0 }
        try pg.copyIn(into: stage, columns: names + ["sluice_partition", "sluice_seq", "sluice_present"]) { out in
            for change in changes {
                guard change.key.count == keyNames.count, change.row.map({ $0.count == names.count }) ?? true else {
                    throw SinkError("\(table): a view change with \(change.key.count) key parts and \(change.row?.count ?? 0) values for \(keyNames.count) key columns and \(names.count) columns")
                }
                if let row = change.row {
                    for value in row { try RecordColumns.copy(value, to: &out, table: table) }
                } else {
                    for i in names.indices {
                        if let k = keyAt.firstIndex(of: i) { try RecordColumns.copy(change.key[k], to: &out, table: table) } else { out.null() }
                    }
                }
                out.int32(Int32(partition))
                out.int(seq)
                out.bool(change.row != nil)
                try out.endRow()
            }
        }
        // The temporary table has no statistics until analyzed: without them the planner may scan
        // the whole view to join a commit's few thousand keys.
        try pg.execute("ANALYZE \"\(stage)\"")
        let p = PostgresValue.int(Int64(partition))
        let priorColumns = names.map { keyNames.contains($0) ? "s.\"\($0)\"" : "v.\"\($0)\"" }.joined(separator: ", ")
        try pg.execute("""
            INSERT INTO "\(undo)"(sluice_partition, sluice_seq, sluice_present, sluice_prior_seq, \(quoted(names)))
            SELECT $1, $2, v.sluice_seq IS NOT NULL, v.sluice_seq, \(priorColumns)
            FROM "\(stage)" s LEFT JOIN "\(table)" v ON \(keyMatch("v", "s"))
            """, [p, .int(seq)])
        if changes.contains(where: { $0.row == nil }) {
            try pg.execute("DELETE FROM \"\(table)\" v USING \"\(stage)\" s WHERE NOT s.sluice_present AND \(keyMatch("v", "s"))")
        }
        try pg.execute("""
            INSERT INTO "\(table)" SELECT \(quoted(names)), sluice_partition, sluice_seq FROM "\(stage)" WHERE sluice_present
            ON CONFLICT (\(quoted(keyNames))) DO UPDATE SET \(updates)
            """)
        try pg.execute("DELETE FROM \"\(undo)\" WHERE sluice_partition = $1 AND sluice_seq < $2", [p, .int(seq - 1)])
    }

    func discardPostgres(partition: Int, after seq: Int64, in pg: PostgresConnection) throws {
        let p = PostgresValue.int(Int64(partition))
        if seq == 0 {
            try pg.execute("DELETE FROM \"\(table)\" WHERE sluice_partition = $1", [p])
            try pg.execute("DELETE FROM \"\(undo)\" WHERE sluice_partition = $1", [p])
            return
        }
        let oldest = try pg.execute("SELECT COALESCE(MIN(sluice_seq), 0) FROM \"\(undo)\" WHERE sluice_partition = $1", [p])
        try checkUndoCovers(oldest: try oldest.int64(0, 0), after: seq, partition: partition)
        // Per key, the image before the first dropped commit.
        let first = """
            (SELECT DISTINCT ON (\(quoted(keyNames))) * FROM "\(undo)" WHERE sluice_partition = $1 AND sluice_seq > $2
             ORDER BY \(quoted(keyNames)), sluice_seq) f
            """
        try pg.execute("DELETE FROM \"\(table)\" v USING \(first) WHERE NOT f.sluice_present AND \(keyMatch("v", "f"))", [p, .int(seq)])
        try pg.execute("""
            INSERT INTO "\(table)" SELECT \(quoted(names, prefix: "f.")), f.sluice_partition, f.sluice_prior_seq FROM \(first)
            WHERE f.sluice_present ON CONFLICT (\(quoted(keyNames))) DO UPDATE SET \(updates)
            """, [p, .int(seq)])
        try pg.execute("DELETE FROM \"\(undo)\" WHERE sluice_partition = $1 AND sluice_seq > $2", [p, .int(seq)])
    }
}

/// A view's rows and its source table's rows, read back for `sluice verify`.
public enum ViewReader {
    /// The view's rows (the schema's fields, then the derived ones) in a SQLite or PostgreSQL sink.
    public static func viewRows(uri: String, job: JobSpec) throws -> [[Value]] {
        let fields = job.pipeline.recordFields
        if uri.hasPrefix("sqlite:") {
            let path = String(uri.dropFirst("sqlite:".count))
            guard FileManager.default.fileExists(atPath: path) else { throw SinkError("no database at '\(path)'") }
            let db = try SQLiteDatabase(path: path)
            let select = try db.prepare("SELECT \(fields.map { "\"\($0.name)\"" }.joined(separator: ", ")) FROM \"\(job.table)\"")
            var rows: [[Value]] = []
            while try select.step() {
                rows.append(try fields.enumerated().map { try RecordColumns.read(select, column: Int32($0), as: $1.type, table: job.table) })
            }
            return rows
        }
        guard PostgresURL.isPostgres(uri) else {
            throw SinkError("sluice verify reads a view from sqlite:PATH or postgres://…, not '\(PostgresURL.redact(uri))'")
        }
        let url = try PostgresURL(uri)
        let table = url.options["table"] ?? job.table
        let conn = try PostgresConnection(url: url)
        let result = try conn.execute("SELECT \(RecordColumns.postgresSelect(fields)) FROM \"\(table)\"")
        return try (0..<result.count).map { r in
            try fields.enumerated().map { i, f in
                guard let text = result.string(r, i) else { return .null }
                if case .bool = f.type { return .bool(text == "t" || text == "true") }
                return try RecordColumns.parse(text, as: f.type, postgres: true, table: table)
            }
        }
    }

    /// The rows of a `postgres-cdc://` source's table now: column → PostgreSQL's text (nil: NULL).
    public static func tableRows(cdcURI uri: String, jobName: String) throws -> [[String: String?]] {
        let spec = try CdcSpec(uri: uri, jobName: jobName)
        let conn = try PostgresConnection(url: spec.url)
        let columns = try conn.execute("""
            SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum
            """, [.text(spec.table)])
        let names = (0..<columns.count).compactMap { columns.string($0, 0) }
        let rows = try conn.execute("SELECT \(names.map { "\"\($0)\"::text" }.joined(separator: ", ")) FROM \"\(spec.table)\"")
        return (0..<rows.count).map { r in
            var row: [String: String?] = [:]
            for (i, name) in names.enumerated() { row[name] = rows.string(r, i) }
            return row
        }
    }
}
