import SluiceCore
import SluiceStorage

/// The table a job of kind `changes` writes, one row per change event, in every sink:
/// `lsn, lsn_index, commit_time_ms, table_name, op, before, after` (before/after: JSON text, NULL
/// when there is none), plus the partition and checkpoint seq as for windowed results.
enum ChangeTable {
    static let columns = ["lsn", "lsn_index", "commit_time_ms", "table_name", "op", "before", "after"]

    static func sqliteDDL(_ table: String) -> String {
        """
        CREATE TABLE IF NOT EXISTS "\(table)"(lsn INTEGER NOT NULL, lsn_index INTEGER NOT NULL, commit_time_ms INTEGER NOT NULL,
            table_name TEXT NOT NULL, op TEXT NOT NULL, before TEXT, after TEXT, sluice_partition INTEGER NOT NULL, sluice_seq INTEGER NOT NULL);
        """
    }

    static func postgresDDL(_ table: String) -> String {
        """
        CREATE TABLE IF NOT EXISTS "\(table)"(lsn bigint NOT NULL, lsn_index bigint NOT NULL, commit_time_ms bigint NOT NULL,
            table_name text NOT NULL, op text NOT NULL, before text, after text, sluice_partition integer NOT NULL, sluice_seq bigint NOT NULL);
        \(PostgresSink.seqIndex(table))
        """
    }

    static func writeSQLite(_ changes: [ChangeRow], table: String, partition: Int, seq: Int64, in db: SQLiteDatabase) throws {
        guard !changes.isEmpty else { return }
        let insert = try db.prepare("INSERT INTO \"\(table)\" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
        for c in changes {
            try insert.bind(1, c.lsn).bind(2, c.index).bind(3, c.commitTimeMs).bind(4, c.table).bind(5, c.op)
                .bind(6, c.before.isEmpty ? nil : c.before).bind(7, c.after.isEmpty ? nil : c.after)
                .bind(8, Int64(partition)).bind(9, seq).run()
        }
    }

    static func copyPostgres(_ changes: [ChangeRow], table: String, partition: Int, seq: Int64, in pg: PostgresConnection) throws {
        guard !changes.isEmpty else { return }
        try pg.copyIn(into: table, columns: columns + ["sluice_partition", "sluice_seq"]) { out in
            for c in changes {
                out.int(c.lsn)
                out.int(c.index)
                out.int(c.commitTimeMs)
                out.text(c.table)
                out.text(c.op)
                if c.before.isEmpty { out.null() } else { out.text(c.before) }
                if c.after.isEmpty { out.null() } else { out.text(c.after) }
                out.int32(Int32(partition))
                out.int(seq)
                try out.endRow()
            }
        }
    }

    /// CSV with a header; the JSON texts quoted.
    static func csv(_ changes: [ChangeRow]) -> [UInt8] {
        var out = Array((columns.joined(separator: ",") + "\n").utf8)
        for c in changes {
            appendDecimal(c.lsn, to: &out)
            out.append(44)
            appendDecimal(c.index, to: &out)
            out.append(44)
            appendDecimal(c.commitTimeMs, to: &out)
            out.append(44)
            out.append(contentsOf: c.table.utf8)
            out.append(44)
            out.append(contentsOf: c.op.utf8)
            out.append(44)
            if !c.before.isEmpty { RejectedCSV.quote(c.before, to: &out) }
            out.append(44)
            if !c.after.isEmpty { RejectedCSV.quote(c.after, to: &out) }
            out.append(10)
        }
        return out
    }
}
