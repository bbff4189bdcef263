import Foundation
import Logging
import SluiceCore

/// The checkpoint store in PostgreSQL, with the same fenced commit as the embedded one: `claim`
/// raises the partition's epoch; a commit locks the partition's row (`FOR UPDATE`), checks the
/// epoch and that the seq follows the stored one, writes the sink's rows, the checkpoint (the last
/// two are kept) and the commit log row, in one transaction. libpq blocks, so the store runs on a
/// serial executor of its own; a broken connection is retried (`PostgresSession`) without
/// doubling a commit: the seq check makes a repeated commit recognisable.
public actor PostgresCheckpointStore: CheckpointStoring {
    private let session: PostgresSession
    private let executor = QueueExecutor(label: "sluice.postgres-checkpoint-store")
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    public nonisolated let location: String

    /// Connects and migrates the schema (a wrong URL or password fails here, not at a commit).
    public init(url: PostgresURL, retryLimit: Duration = .seconds(120), logger: Logger) throws {
        session = PostgresSession(url: url, name: "checkpoint store", retryLimit: retryLimit, logger: logger)
        location = url.redacted
        try session.run { conn, _ in
            _ = try PostgresSchema.migrate(conn)
            try Self.fillMissingChecksums(conn)
        }
    }

    /// Rows written before checksums existed (schema version 4) get one, computed from the row.
    private static func fillMissingChecksums(_ conn: PostgresConnection) throws {
        let rows = try conn.execute("""
            SELECT partition, seq, epoch, "offset", position, watermark, finished, state, files
            FROM sluice_checkpoints WHERE checksum IS NULL
            """)
        for r in 0..<rows.count {
            let checkpoint = Checkpoint(
                partition: Int(try rows.int64(r, 0)), seq: try rows.int64(r, 1), epoch: try rows.int64(r, 2),
                offset: try rows.int64(r, 3), position: try rows.int64(r, 4), watermark: try rows.int64(r, 5),
                finished: rows.bool(r, 6), state: rows.bytes(r, 7), files: Checkpoint.files(rows.string(r, 8) ?? ""))
            try conn.execute("UPDATE sluice_checkpoints SET checksum = $1 WHERE partition = $2 AND seq = $3 AND checksum IS NULL",
                             [.int(Int64(checkpoint.checksum)), .int(Int64(checkpoint.partition)), .int(checkpoint.seq)])
        }
    }

    public func bind(job fingerprint: String, partitions: Int, writer: any CommitWriter) throws {
        let bound = "\(fingerprint); partitions=\(partitions)"
        let location = self.location
        try session.run { conn, _ in
            try conn.transaction {
                try conn.execute("SELECT pg_advisory_xact_lock($1)", [.int(PostgresSchema.lockKey)])
                let existing = try conn.execute("SELECT value FROM sluice_meta WHERE key = 'job'")
                if existing.count > 0, let stored = existing.string(0, 0), stored != bound {
                    throw StoreError.differentBinding(store: location, stored: stored, this: bound,
                                                      fix: "use a fresh database (or output), or the original job, input and output")
                }
                try conn.execute("INSERT INTO sluice_meta(key, value) VALUES ('job', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                                 [.text(bound)])
                try writer.createTables(in: conn)
            }
        }
    }

    public func storeID() throws -> String {
        let candidate = UUID().uuidString.lowercased()
        return try session.run { conn, _ in
            try conn.execute("INSERT INTO sluice_meta(key, value) VALUES ('store_id', $1) ON CONFLICT (key) DO NOTHING", [.text(candidate)])
            let found = try conn.execute("SELECT value FROM sluice_meta WHERE key = 'store_id'")
            guard found.count == 1, let id = found.string(0, 0) else { throw StoreError("store \(self.location): no store_id after writing it") }
            return id
        }
    }

    /// Raises the epoch to `epoch` unless a newer one is stored (claiming the current one again
    /// succeeds, as in the embedded store), and logs the accepted claim in `sluice_claims`.
    public func claim(partition: Int, epoch: Int64) throws -> Bool {
        try session.run { conn, _ in
            try conn.transaction {
                try Self.lockPartition(conn, partition: partition)
                let claimed = try conn.execute("""
                    UPDATE sluice_partitions SET epoch = $2 WHERE partition = $1 AND epoch <= $2 RETURNING epoch
                    """, [.int(Int64(partition)), .int(epoch)]).count == 1
                if claimed { try Self.logClaim(conn, partition: partition, epoch: epoch) }
                return claimed
            }
        }
    }

    public func claimNext(partition: Int) throws -> Int64 {
        try session.run { conn, _ in
            try conn.transaction {
                try Self.lockPartition(conn, partition: partition)
                let epoch = try conn.execute("""
                    UPDATE sluice_partitions SET epoch = epoch + 1 WHERE partition = $1 RETURNING epoch
                    """, [.int(Int64(partition))]).int64(0, 0)
                try Self.logClaim(conn, partition: partition, epoch: epoch)
                return epoch
            }
        }
    }

    /// Makes sure the partition's row exists and locks it, so that a commit in flight finishes
    /// first and the claim log's `after_seq` (read by a later statement, with a fresh snapshot)
    /// counts it.
    private static func lockPartition(_ conn: PostgresConnection, partition: Int) throws {
        try conn.execute("INSERT INTO sluice_partitions(partition, epoch) VALUES ($1, 0) ON CONFLICT (partition) DO NOTHING",
                         [.int(Int64(partition))])
        try conn.execute("SELECT epoch FROM sluice_partitions WHERE partition = $1 FOR UPDATE", [.int(Int64(partition))])
    }

    private static func logClaim(_ conn: PostgresConnection, partition: Int, epoch: Int64) throws {
        try conn.execute("""
            INSERT INTO sluice_claims(partition, epoch, after_seq)
            SELECT $1, $2, COALESCE(MAX(seq), 0) FROM sluice_commits WHERE partition = $1
            """, [.int(Int64(partition)), .int(epoch)])
    }

    public func epoch(partition: Int) throws -> Int64 {
        try session.run { conn, _ in try Self.epoch(conn, partition: partition, lock: false) }
    }

    public func checkpoints(partition: Int) throws -> [Checkpoint] {
        try session.run { conn, _ in
            let rows = try conn.execute("""
                SELECT seq, epoch, "offset", position, watermark, finished, state, files, checksum
                FROM sluice_checkpoints WHERE partition = $1 ORDER BY seq DESC
                """, [.int(Int64(partition))])
            return try (0..<rows.count).map { r in
                let checkpoint = Checkpoint(
                    partition: partition, seq: try rows.int64(r, 0), epoch: try rows.int64(r, 1), offset: try rows.int64(r, 2),
                    position: try rows.int64(r, 3), watermark: try rows.int64(r, 4), finished: rows.bool(r, 5),
                    state: rows.bytes(r, 6), files: Checkpoint.files(rows.string(r, 7) ?? ""))
                return checkpoint.verified(against: rows.isNull(r, 8) ? nil : try rows.int64(r, 8))
            }
        }
    }

    /// The fenced commit. Throws `CommitFenced` (and writes nothing) unless the stored epoch is
    /// `checkpoint.epoch`. Retried after a lost connection: if the earlier attempt did commit
    /// (its checkpoint is the stored newest, same epoch and offset), that is success, not a
    /// second commit.
    public func commit(_ checkpoint: Checkpoint, fromOffset: Int64, output: PartitionOutput,
                       writer: any CommitWriter) throws {
        let p = Int64(checkpoint.partition)
        try session.run { conn, retrying in
            try conn.transaction {
                let current = try Self.epoch(conn, partition: checkpoint.partition, lock: true)
                guard current == checkpoint.epoch else {
                    throw CommitFenced(partition: checkpoint.partition, epoch: checkpoint.epoch, currentEpoch: current)
                }
                let last = try conn.execute("""
                    SELECT seq, epoch, "offset" FROM sluice_checkpoints WHERE partition = $1 ORDER BY seq DESC LIMIT 1
                    """, [.int(p)])
                let lastSeq = last.count > 0 ? try last.int64(0, 0) : 0
                if retrying, lastSeq == checkpoint.seq, try last.int64(0, 1) == checkpoint.epoch,
                   try last.int64(0, 2) == checkpoint.offset {
                    return  // the attempt that lost its connection had committed
                }
                guard checkpoint.seq == lastSeq + 1 else {
                    throw StoreError("partition \(p): checkpoint \(checkpoint.seq) does not follow the stored \(lastSeq)")
                }
                try writer.write(output, partition: checkpoint.partition, seq: checkpoint.seq, in: conn)
                try conn.execute("""
                    INSERT INTO sluice_checkpoints(partition, seq, epoch, "offset", position, watermark, finished, state, files, checksum)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                    """, [.int(p), .int(checkpoint.seq), .int(checkpoint.epoch), .int(checkpoint.offset),
                          .int(checkpoint.position), .int(checkpoint.watermark), .bool(checkpoint.finished),
                          .bytes(checkpoint.state), .text(checkpoint.files.joined(separator: "\n")),
                          .int(Int64(checkpoint.checksum))])
                try conn.execute("DELETE FROM sluice_checkpoints WHERE partition = $1 AND seq < $2",
                                 [.int(p), .int(checkpoint.seq - 1)])
                try conn.execute("""
                    INSERT INTO sluice_commits(partition, seq, epoch, from_offset, to_offset, "rows", late, dead_letters, state_bytes)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                    """, [.int(p), .int(checkpoint.seq), .int(checkpoint.epoch), .int(fromOffset), .int(checkpoint.offset),
                          .int(Int64(output.rowCount)), .int(Int64(output.late.count)),
                          .int(Int64(output.deadLetters.count)), .int(Int64(checkpoint.state.count))])
            }
        }
    }

    /// Forgets the partition's checkpoints after `seq` and the output they committed, fenced like
    /// a commit (idempotent, so a retry is harmless).
    public func rollBack(partition: Int, epoch: Int64, to seq: Int64, writer: any CommitWriter) throws {
        let p = Int64(partition)
        try session.run { conn, _ in
            try conn.transaction {
                let current = try Self.epoch(conn, partition: partition, lock: true)
                guard current == epoch else { throw CommitFenced(partition: partition, epoch: epoch, currentEpoch: current) }
                try writer.discard(partition: partition, after: seq, in: conn)
                try conn.execute("DELETE FROM sluice_checkpoints WHERE partition = $1 AND seq > $2", [.int(p), .int(seq)])
                try conn.execute("DELETE FROM sluice_commits WHERE partition = $1 AND seq > $2", [.int(p), .int(seq)])
            }
        }
    }

    /// Replaces a checkpoint's state bytes (tests: simulate corruption).
    public func overwriteState(partition: Int, seq: Int64, state: [UInt8]) throws {
        try session.run { conn, _ in
            try conn.execute("UPDATE sluice_checkpoints SET state = $1 WHERE partition = $2 AND seq = $3",
                             [.bytes(state), .int(Int64(partition)), .int(seq)])
        }
    }

    public func commitLog() throws -> [CheckpointStore.CommitRecord] {
        try session.run { conn, _ in try Self.commitLog(conn) }
    }

    /// Every accepted claim, in the order they happened.
    public func claimLog() throws -> [CheckpointStore.ClaimRecord] {
        try session.run { conn, _ in try Self.claimLog(conn) }
    }

    /// Reads the commit log of a store's database (also used by the chaos harness).
    public static func commitLog(_ conn: PostgresConnection) throws -> [CheckpointStore.CommitRecord] {
        let rows = try conn.execute("""
            SELECT partition, seq, epoch, from_offset, to_offset, "rows" FROM sluice_commits ORDER BY partition, seq
            """)
        return try (0..<rows.count).map { r in
            CheckpointStore.CommitRecord(partition: Int(try rows.int64(r, 0)), seq: try rows.int64(r, 1), epoch: try rows.int64(r, 2),
                                         fromOffset: try rows.int64(r, 3), toOffset: try rows.int64(r, 4), rows: try rows.int64(r, 5))
        }
    }

    /// Reads the claim log of a store's database (also used by the chaos harness).
    public static func claimLog(_ conn: PostgresConnection) throws -> [CheckpointStore.ClaimRecord] {
        let rows = try conn.execute("SELECT partition, epoch, after_seq FROM sluice_claims ORDER BY id")
        return try (0..<rows.count).map { r in
            CheckpointStore.ClaimRecord(partition: Int(try rows.int64(r, 0)), epoch: try rows.int64(r, 1), afterSeq: try rows.int64(r, 2))
        }
    }

    /// The schema version the database is at.
    public func schemaVersion() throws -> Int {
        try session.run { conn, _ in
            Int(try conn.execute("SELECT COALESCE(MAX(version), 0) FROM sluice_schema_version").int64(0, 0))
        }
    }

    private static func epoch(_ conn: PostgresConnection, partition: Int, lock: Bool) throws -> Int64 {
        let rows = try conn.execute("SELECT epoch FROM sluice_partitions WHERE partition = $1" + (lock ? " FOR UPDATE" : ""),
                                    [.int(Int64(partition))])
        return rows.count > 0 ? try rows.int64(0, 0) : 0
    }
}
