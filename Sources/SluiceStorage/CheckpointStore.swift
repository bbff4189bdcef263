import Foundation
import Dispatch
import SluiceCore

/// One partition's checkpoint: where its source stands, its watermark and window state, and the
/// files its commit published (file sink). Written in one transaction with the output it covers.
public struct Checkpoint: Sendable, Equatable {
    public var partition: Int
    /// 1, 2, 3, … per partition; 0 means "no checkpoint yet".
    public var seq: Int64
    public var epoch: Int64
    /// Lines consumed: replay starts at this offset.
    public var offset: Int64
    /// Where the source resumes (a byte position for files, the offset for the generator).
    public var position: Int64
    public var watermark: Int64
    /// The input ended and every window fired: nothing more to do for this partition.
    public var finished: Bool
    /// `PartitionProcessor.snapshot()` bytes (envelope with CRC32C).
    public var state: [UInt8]
    public var files: [String]
    /// As read from a store: whether the stored checksum matches every field. A checkpoint whose
    /// row was damaged or edited is not restored (the runner falls back as for a corrupt blob).
    public var checksumMatches = true

    public init(partition: Int, seq: Int64, epoch: Int64, offset: Int64, position: Int64, watermark: Int64,
                finished: Bool, state: [UInt8], files: [String] = []) {
        self.partition = partition
        self.seq = seq
        self.epoch = epoch
        self.offset = offset
        self.position = position
        self.watermark = watermark
        self.finished = finished
        self.state = state
        self.files = files
    }
}

extension Checkpoint {
    /// CRC-32C over every field a restore relies on: partition, seq, epoch, offset, position,
    /// watermark, finished, the published files and the state blob (whose envelope has a CRC of its
    /// own, which covers only the blob). Stored next to the row and checked when it is read.
    public var checksum: UInt32 {
        var w = BinaryWriter(capacity: 64 + state.count)
        w.writeRaw(Array("SLCK".utf8))
        for field in [Int64(partition), seq, epoch, offset, position, watermark, finished ? 1 : 0] { w.write(field) }
        w.write(UInt64(files.count))
        for file in files { w.write(bytes: Array(file.utf8)) }
        w.write(bytes: state)
        return w.bytes.withUnsafeBytes { CRC32C.checksum($0) }
    }

    /// `files` entries with this prefix are the source's, not the sink's: what a source must know to
    /// resume as it began (a Kafka source's `stop=latest` offset). Covered by the checksum.
    public static let sourceNotePrefix = "source:"

    /// The sink's published files.
    public var sinkFiles: [String] { files.filter { !$0.hasPrefix(Checkpoint.sourceNotePrefix) } }

    /// The source's note, if it left one.
    public var sourceNote: String? {
        files.first { $0.hasPrefix(Checkpoint.sourceNotePrefix) }.map { String($0.dropFirst(Checkpoint.sourceNotePrefix.count)) }
    }

    /// The `files` column: one name a line.
    static func files(_ column: String) -> [String] {
        column.isEmpty ? [] : column.split(separator: "\n").map(String.init)
    }

    /// The checkpoint as read back, with its stored checksum compared.
    func verified(against stored: Int64?) -> Checkpoint {
        var copy = self
        copy.checksumMatches = stored.map { UInt32(truncatingIfNeeded: $0) == checksum && $0 >= 0 && $0 <= Int64(UInt32.max) } ?? false
        return copy
    }
}

/// A commit refused because another owner claimed the partition with a newer epoch.
public struct CommitFenced: Error, CustomStringConvertible, Equatable {
    public var partition: Int
    public var epoch: Int64
    public var currentEpoch: Int64
    public var description: String {
        "partition \(partition): commit with epoch \(epoch) fenced off (the partition now has epoch \(currentEpoch))"
    }
}

public struct StoreError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }

    /// A store bound to another job, input, sink, table or partition count: names each part that
    /// differs (bindings are `name=value` parts joined by "; "), stored and new.
    static func differentBinding(store: String, stored: String, this: String, fix: String) -> StoreError {
        func parts(_ text: String) -> [(String, String)] {
            text.components(separatedBy: "; ").map { part in
                guard let eq = part.firstIndex(of: "=") else { return (part, "") }
                return (String(part[..<eq]), String(part[part.index(after: eq)...]))
            }
        }
        let old = Dictionary(parts(stored), uniquingKeysWith: { a, _ in a })
        let new = parts(this)
        var lines = new.filter { old[$0.0] != $0.1 }.map { "  \($0.0): stored \(old[$0.0] ?? "(none)"), this run \($0.1)" }
        if lines.isEmpty { lines = ["  stored: \(stored)", "  this:   \(this)"] }
        return StoreError("store '\(store)' holds the state of another run; it differs in:\n" + lines.joined(separator: "\n") + "\n\(fix)")
    }
}

/// The embedded checkpoint store (SQLite): per partition an epoch that only grows, the last two
/// checkpoints, and a log of every commit. The fenced commit: a transaction that checks the stored
/// epoch is the committer's, writes the output and the checkpoint, or writes nothing.
public actor CheckpointStore {
    public static var schemaVersion: Int64 { schema.currentVersion }
    private let db: SQLiteDatabase
    /// SQLite calls block (fsync, and waiting for another process's write lock), so the store runs
    /// on a thread of its own rather than on the cooperative pool, where it would starve heartbeats.
    private let executor = QueueExecutor(label: "sluice.checkpoint-store")
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    public init(path: String) throws {
        let db = try SQLiteDatabase(path: path)
        self.db = db
        try db.execute("PRAGMA journal_mode=WAL")
        try db.execute("PRAGMA synchronous=FULL")
        try CheckpointStore.schema.migrate(db)
    }

    /// The store's schema, in order (the version is `schema_version` in `sluice_meta`; a file
    /// without it is new). A store of a newer version than this binary knows is refused.
    static let schema = SQLiteSchema(
        name: "checkpoint store",
        migrations: [
            SQLiteMigration(version: 1, description: "partitions with epochs, the last checkpoints, the commit and claim logs") { db in
                try db.execute("""
                    CREATE TABLE IF NOT EXISTS sluice_partitions(
                        partition INTEGER PRIMARY KEY, epoch INTEGER NOT NULL);
                    CREATE TABLE IF NOT EXISTS sluice_checkpoints(
                        partition INTEGER NOT NULL, seq INTEGER NOT NULL, epoch INTEGER NOT NULL,
                        offset INTEGER NOT NULL, position INTEGER NOT NULL, watermark INTEGER NOT NULL,
                        finished INTEGER NOT NULL, state BLOB NOT NULL, files TEXT NOT NULL,
                        PRIMARY KEY(partition, seq));
                    CREATE TABLE IF NOT EXISTS sluice_commits(
                        partition INTEGER NOT NULL, seq INTEGER NOT NULL, epoch INTEGER NOT NULL,
                        from_offset INTEGER NOT NULL, to_offset INTEGER NOT NULL, rows INTEGER NOT NULL,
                        late INTEGER NOT NULL, dead_letters INTEGER NOT NULL, state_bytes INTEGER NOT NULL,
                        PRIMARY KEY(partition, seq));
                    """)
                try createClaims(db)
            },
            SQLiteMigration(version: 2, description: "a checksum over every field of a checkpoint row, not just its blob") { db in
                try db.execute("ALTER TABLE sluice_checkpoints ADD COLUMN checksum INTEGER")
                try fillMissingChecksums(db)
                // Version-1 stores from before the claim log: it is part of version 2's shape.
                try createClaims(db)
            },
        ],
        readVersion: { db in
            try db.execute("CREATE TABLE IF NOT EXISTS sluice_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            guard let text = try meta(db, "schema_version") else { return 0 }
            guard let version = Int64(text) else { throw StoreError("store '\(db.path)': unreadable schema version '\(text)'") }
            return version
        },
        writeVersion: { db, version in try setMeta(db, "schema_version", String(version)) })

    /// Every accepted claim, with the last commit seq at that moment: the chaos checks prove from
    /// it that no commit of an epoch older than the latest claim was accepted.
    private static func createClaims(_ db: SQLiteDatabase) throws {
        try db.execute("""
            CREATE TABLE IF NOT EXISTS sluice_claims(
                id INTEGER PRIMARY KEY AUTOINCREMENT, partition INTEGER NOT NULL, epoch INTEGER NOT NULL,
                after_seq INTEGER NOT NULL)
            """)
    }

    /// Rows written before checksums existed get one, computed from the row as it is.
    private static func fillMissingChecksums(_ db: SQLiteDatabase) throws {
        let stmt = try db.prepare("""
            SELECT partition, seq, epoch, offset, position, watermark, finished, state, files
            FROM sluice_checkpoints WHERE checksum IS NULL
            """)
        var rows: [Checkpoint] = []
        while try stmt.step() {
            rows.append(Checkpoint(partition: Int(stmt.int64(0)), seq: stmt.int64(1), epoch: stmt.int64(2),
                                   offset: stmt.int64(3), position: stmt.int64(4), watermark: stmt.int64(5),
                                   finished: stmt.int64(6) != 0, state: stmt.blob(7), files: Checkpoint.files(stmt.string(8))))
        }
        for row in rows {
            try db.prepare("UPDATE sluice_checkpoints SET checksum = ? WHERE partition = ? AND seq = ?")
                .bind(1, Int64(row.checksum)).bind(2, Int64(row.partition)).bind(3, row.seq).run()
        }
    }

    public var path: String { db.path }

    /// Ties the store to one job, input, sink and partition count (`StoreBinding`), so that a
    /// changed run never resumes from a state it did not write.
    public func bind(job fingerprint: String, partitions: Int, writer: any CommitWriter) throws {
        let bound = "\(fingerprint); partitions=\(partitions)"
        if let existing = try CheckpointStore.meta(db, "job"), existing != bound {
            throw StoreError.differentBinding(store: db.path, stored: existing, this: bound, fix: "use a fresh --state (and output), or the original job, input and output")
        }
        try CheckpointStore.setMeta(db, "job", bound)
        try writer.createTables(in: db)
    }

    public func storeID() throws -> String {
        try db.prepare("INSERT OR IGNORE INTO sluice_meta(key, value) VALUES ('store_id', ?)")
            .bind(1, UUID().uuidString.lowercased()).run()
        guard let id = try CheckpointStore.meta(db, "store_id") else { throw StoreError("store '\(db.path)': no store_id after writing it") }
        return id
    }

    /// Raises the partition's epoch to `epoch`; false if it already has a newer one. Claiming the
    /// current epoch again succeeds: the coordinator gives an epoch to one owner only, and that
    /// owner may restart the partition (after a reconnect) under the same grant.
    public func claim(partition: Int, epoch: Int64) throws -> Bool {
        try db.transaction {
            try db.prepare("INSERT OR IGNORE INTO sluice_partitions(partition, epoch) VALUES (?, 0)")
                .bind(1, Int64(partition)).run()
            try db.prepare("UPDATE sluice_partitions SET epoch = ? WHERE partition = ? AND epoch <= ?")
                .bind(1, epoch).bind(2, Int64(partition)).bind(3, epoch).run()
            guard db.changes == 1 else { return false }
            try logClaim(partition: partition, epoch: epoch)
            return true
        }
    }

    /// Claims the partition with the next epoch, atomically (single-process runs, where no
    /// coordinator hands epochs out): two runs started at once get different epochs.
    public func claimNext(partition: Int) throws -> Int64 {
        try db.transaction {
            try db.prepare("INSERT OR IGNORE INTO sluice_partitions(partition, epoch) VALUES (?, 0)")
                .bind(1, Int64(partition)).run()
            try db.prepare("UPDATE sluice_partitions SET epoch = epoch + 1 WHERE partition = ?")
                .bind(1, Int64(partition)).run()
            let claimed = try epoch(partition: partition)
            try logClaim(partition: partition, epoch: claimed)
            return claimed
        }
    }

    private func logClaim(partition: Int, epoch: Int64) throws {
        try db.prepare("""
            INSERT INTO sluice_claims(partition, epoch, after_seq)
            SELECT ?, ?, COALESCE(MAX(seq), 0) FROM sluice_commits WHERE partition = ?
            """).bind(1, Int64(partition)).bind(2, epoch).bind(3, Int64(partition)).run()
    }

    public func epoch(partition: Int) throws -> Int64 {
        let stmt = try db.prepare("SELECT epoch FROM sluice_partitions WHERE partition = ?").bind(1, Int64(partition))
        defer { stmt.reset() }
        return try stmt.step() ? stmt.int64(0) : 0
    }

    /// The partition's stored checkpoints, newest first (at most two).
    public func checkpoints(partition: Int) throws -> [Checkpoint] {
        let stmt = try db.prepare("""
            SELECT seq, epoch, offset, position, watermark, finished, state, files, checksum
            FROM sluice_checkpoints WHERE partition = ? ORDER BY seq DESC
            """).bind(1, Int64(partition))
        var result: [Checkpoint] = []
        while try stmt.step() {
            let checkpoint = Checkpoint(
                partition: partition, seq: stmt.int64(0), epoch: stmt.int64(1), offset: stmt.int64(2),
                position: stmt.int64(3), watermark: stmt.int64(4), finished: stmt.int64(5) != 0,
                state: stmt.blob(6), files: Checkpoint.files(stmt.string(7)))
            result.append(checkpoint.verified(against: stmt.isNull(8) ? nil : stmt.int64(8)))
        }
        return result
    }

    /// The fenced commit. Throws `CommitFenced` (and writes nothing) unless the stored epoch is
    /// `checkpoint.epoch`.
    public func commit(_ checkpoint: Checkpoint, fromOffset: Int64, output: PartitionOutput,
                       writer: any CommitWriter) throws {
        let p = Int64(checkpoint.partition)
        try db.transaction {
            let current = try epoch(partition: checkpoint.partition)
            guard current == checkpoint.epoch || TestFaults.skipEpochCheck else {
                throw CommitFenced(partition: checkpoint.partition, epoch: checkpoint.epoch, currentEpoch: current)
            }
            let last = try db.prepare("SELECT COALESCE(MAX(seq), 0) FROM sluice_checkpoints WHERE partition = ?").bind(1, p)
            defer { last.reset() }
            _ = try last.step()
            let lastSeq = last.int64(0)
            guard checkpoint.seq == lastSeq + 1 else {
                throw StoreError("partition \(p): checkpoint \(checkpoint.seq) does not follow the stored \(lastSeq)")
            }
            try writer.write(output, partition: checkpoint.partition, seq: checkpoint.seq, in: db)
            try db.prepare("""
                INSERT INTO sluice_checkpoints(partition, seq, epoch, offset, position, watermark, finished, state, files, checksum)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
                .bind(1, p).bind(2, checkpoint.seq).bind(3, checkpoint.epoch).bind(4, checkpoint.offset)
                .bind(5, checkpoint.position).bind(6, checkpoint.watermark).bind(7, Int64(checkpoint.finished ? 1 : 0))
                .bind(8, checkpoint.state).bind(9, checkpoint.files.joined(separator: "\n"))
                .bind(10, Int64(checkpoint.checksum)).run()
            try db.prepare("DELETE FROM sluice_checkpoints WHERE partition = ? AND seq < ?")
                .bind(1, p).bind(2, checkpoint.seq - 1).run()
            try db.prepare("""
                INSERT INTO sluice_commits(partition, seq, epoch, from_offset, to_offset, rows, late, dead_letters, state_bytes)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
                .bind(1, p).bind(2, checkpoint.seq).bind(3, checkpoint.epoch).bind(4, fromOffset)
                .bind(5, checkpoint.offset).bind(6, Int64(output.rowCount)).bind(7, Int64(output.late.count))
                .bind(8, Int64(output.deadLetters.count)).bind(9, Int64(checkpoint.state.count)).run()
        }
    }

    /// Forgets the partition's checkpoints after `seq` and the output they committed (0: all of it),
    /// fenced like a commit. Used when the newest checkpoint is corrupt and an older one is restored.
    public func rollBack(partition: Int, epoch: Int64, to seq: Int64, writer: any CommitWriter) throws {
        let p = Int64(partition)
        try db.transaction {
            let current = try self.epoch(partition: partition)
            guard current == epoch else { throw CommitFenced(partition: partition, epoch: epoch, currentEpoch: current) }
            try writer.discard(partition: partition, after: seq, in: db)
            try db.prepare("DELETE FROM sluice_checkpoints WHERE partition = ? AND seq > ?").bind(1, p).bind(2, seq).run()
            try db.prepare("DELETE FROM sluice_commits WHERE partition = ? AND seq > ?").bind(1, p).bind(2, seq).run()
        }
    }

    /// Replaces a checkpoint's state bytes (tests and chaos: simulate corruption on disk).
    public func overwriteState(partition: Int, seq: Int64, state: [UInt8]) throws {
        try db.prepare("UPDATE sluice_checkpoints SET state = ? WHERE partition = ? AND seq = ?")
            .bind(1, state).bind(2, Int64(partition)).bind(3, seq).run()
    }

    public struct CommitRecord: Sendable, Equatable, Codable {
        public var partition: Int, seq: Int64, epoch: Int64, fromOffset: Int64, toOffset: Int64, rows: Int64

        public init(partition: Int, seq: Int64, epoch: Int64, fromOffset: Int64, toOffset: Int64, rows: Int64) {
            (self.partition, self.seq, self.epoch, self.fromOffset, self.toOffset, self.rows) = (partition, seq, epoch, fromOffset, toOffset, rows)
        }
    }

    /// An accepted claim: `epoch` became the partition's epoch when its last commit was `afterSeq`.
    public struct ClaimRecord: Sendable, Equatable, Codable {
        public var partition: Int, epoch: Int64, afterSeq: Int64

        public init(partition: Int, epoch: Int64, afterSeq: Int64) {
            (self.partition, self.epoch, self.afterSeq) = (partition, epoch, afterSeq)
        }
    }

    /// Every accepted claim, in the order they happened.
    public func claimLog() throws -> [ClaimRecord] {
        try CheckpointStore.claimLog(db)
    }

    /// Reads the claims of a store's database (also used read-only by the chaos harness).
    public static func claimLog(_ db: SQLiteDatabase) throws -> [ClaimRecord] {
        let stmt = try db.prepare("SELECT partition, epoch, after_seq FROM sluice_claims ORDER BY id")
        var result: [ClaimRecord] = []
        while try stmt.step() {
            result.append(ClaimRecord(partition: Int(stmt.int64(0)), epoch: stmt.int64(1), afterSeq: stmt.int64(2)))
        }
        return result
    }

    /// Reads the commit log of a store's database (also used read-only by the chaos harness).
    public static func commitLog(_ db: SQLiteDatabase) throws -> [CommitRecord] {
        let stmt = try db.prepare("SELECT partition, seq, epoch, from_offset, to_offset, rows FROM sluice_commits ORDER BY partition, seq")
        var result: [CommitRecord] = []
        while try stmt.step() {
            result.append(CommitRecord(partition: Int(stmt.int64(0)), seq: stmt.int64(1), epoch: stmt.int64(2),
                                       fromOffset: stmt.int64(3), toOffset: stmt.int64(4), rows: stmt.int64(5)))
        }
        return result
    }

    /// Every commit still on record, by partition and seq.
    public func commitLog() throws -> [CommitRecord] {
        try CheckpointStore.commitLog(db)
    }

    private static func meta(_ db: SQLiteDatabase, _ key: String) throws -> String? {
        let stmt = try db.prepare("SELECT value FROM sluice_meta WHERE key = ?").bind(1, key)
        defer { stmt.reset() }
        return try stmt.step() ? stmt.string(0) : nil
    }

    private static func setMeta(_ db: SQLiteDatabase, _ key: String, _ value: String) throws {
        try db.prepare("INSERT INTO sluice_meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
            .bind(1, key).bind(2, value).run()
    }
}
