import Foundation
import SluiceCore
@testable import SluiceStorage
import Testing

/// Writes one row per output row into a table of its own, inside the commit's transaction.
struct RecordingWriter: CommitWriter {
    func createTables(in db: SQLiteDatabase) throws {
        try db.execute("CREATE TABLE IF NOT EXISTS out(partition INTEGER, seq INTEGER, start INTEGER)")
    }
    func write(_ output: PartitionOutput, partition: Int, seq: Int64, in db: SQLiteDatabase) throws {
        for row in 0..<output.rows.count {
            try db.prepare("INSERT INTO out VALUES (?, ?, ?)").bind(1, Int64(partition)).bind(2, seq)
                .bind(3, output.rows.starts[row]).run()
        }
    }
    func discard(partition: Int, after seq: Int64, in db: SQLiteDatabase) throws {
        try db.prepare("DELETE FROM out WHERE partition = ? AND seq > ?").bind(1, Int64(partition)).bind(2, seq).run()
    }
}

func temporaryPath(_ name: String) -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-store-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.appendingPathComponent(name).path
}

func outputWithRows(_ count: Int) -> PartitionOutput {
    // A processor that fired `count` one-event windows gives real rows to commit.
    let p = PartitionProcessor(partition: 0, pipeline: .bidsTumbling)
    let text = (0..<count).map { "1,1,5,\(Int64($0) * 10_000)" }.joined(separator: "\n")
    _ = Array(text.utf8).withUnsafeBytes { p.process($0) }
    p.finish()
    return p.takeOutput()
}

func countRows(_ path: String) throws -> Int64 {
    let db = try SQLiteDatabase(path: path)
    let stmt = try db.prepare("SELECT COUNT(*) FROM out")
    _ = try stmt.step()
    return stmt.int64(0)
}

@Suite struct CheckpointStoreTests {
    let writer = RecordingWriter()

    func checkpoint(_ partition: Int, seq: Int64, epoch: Int64, offset: Int64) -> Checkpoint {
        Checkpoint(partition: partition, seq: seq, epoch: epoch, offset: offset, position: offset * 10,
                   watermark: 42, finished: false, state: [1, 2, 3])
    }

    @Test func aCommitFromAnOlderEpochIsRefusedAndWritesNothing() async throws {
        let path = temporaryPath("store.db")
        let store = try CheckpointStore(path: path)
        try await store.bind(job: "test", partitions: 1, writer: writer)
        #expect(try await store.claim(partition: 0, epoch: 1))
        try await store.commit(checkpoint(0, seq: 1, epoch: 1, offset: 10), fromOffset: 0, output: outputWithRows(3), writer: writer)
        #expect(try countRows(path) == 3)

        #expect(try await store.claim(partition: 0, epoch: 2))
        await #expect(throws: CommitFenced(partition: 0, epoch: 1, currentEpoch: 2)) {
            try await store.commit(checkpoint(0, seq: 2, epoch: 1, offset: 20), fromOffset: 10,
                                   output: outputWithRows(5), writer: writer)
        }
        #expect(try countRows(path) == 3, "the fenced commit left rows behind")
        let stored = try await store.checkpoints(partition: 0)
        #expect(stored.map(\.seq) == [1])
        #expect(stored.first?.epoch == 1)

        try await store.commit(checkpoint(0, seq: 2, epoch: 2, offset: 20), fromOffset: 10, output: outputWithRows(5), writer: writer)
        #expect(try countRows(path) == 8)
    }

    @Test func epochsOnlyGrow() async throws {
        let store = try CheckpointStore(path: temporaryPath("store.db"))
        #expect(try await store.claim(partition: 3, epoch: 5))
        #expect(try await store.claim(partition: 3, epoch: 5), "the same epoch may claim again (same owner)")
        #expect(try await !store.claim(partition: 3, epoch: 4))
        #expect(try await store.epoch(partition: 3) == 5)
        #expect(try await store.claimNext(partition: 3) == 6)
        #expect(try await store.claimNext(partition: 7) == 1)
    }

    @Test func epochsSurviveReopening() async throws {
        let path = temporaryPath("store.db")
        do {
            let store = try CheckpointStore(path: path)
            #expect(try await store.claim(partition: 0, epoch: 9))
        }
        let reopened = try CheckpointStore(path: path)
        #expect(try await reopened.epoch(partition: 0) == 9)
        #expect(try await !reopened.claim(partition: 0, epoch: 8))
    }

    @Test func keepsTwoCheckpointsAndLogsEveryCommit() async throws {
        let store = try CheckpointStore(path: temporaryPath("store.db"))
        try await store.bind(job: "test", partitions: 1, writer: writer)
        _ = try await store.claim(partition: 0, epoch: 1)
        for seq in 1...5 as ClosedRange<Int64> {
            try await store.commit(checkpoint(0, seq: seq, epoch: 1, offset: seq * 100), fromOffset: (seq - 1) * 100,
                                   output: outputWithRows(1), writer: writer)
        }
        #expect(try await store.checkpoints(partition: 0).map(\.seq) == [5, 4])
        let log = try await store.commitLog()
        #expect(log.map(\.seq) == [1, 2, 3, 4, 5])
        for (a, b) in zip(log, log.dropFirst()) { #expect(a.toOffset == b.fromOffset) }
        // A checkpoint that does not follow the last one is refused.
        await #expect(throws: StoreError.self) {
            try await store.commit(checkpoint(0, seq: 9, epoch: 1, offset: 900), fromOffset: 500, output: outputWithRows(1), writer: writer)
        }
    }

    @Test func rollBackRemovesLaterCheckpointsAndTheirOutput() async throws {
        let path = temporaryPath("store.db")
        let store = try CheckpointStore(path: path)
        try await store.bind(job: "test", partitions: 1, writer: writer)
        _ = try await store.claim(partition: 0, epoch: 1)
        try await store.commit(checkpoint(0, seq: 1, epoch: 1, offset: 10), fromOffset: 0, output: outputWithRows(2), writer: writer)
        try await store.commit(checkpoint(0, seq: 2, epoch: 1, offset: 20), fromOffset: 10, output: outputWithRows(3), writer: writer)
        try await store.rollBack(partition: 0, epoch: 1, to: 1, writer: writer)
        #expect(try await store.checkpoints(partition: 0).map(\.seq) == [1])
        #expect(try countRows(path) == 2)
        // Fenced like a commit.
        _ = try await store.claim(partition: 0, epoch: 2)
        await #expect(throws: CommitFenced.self) { try await store.rollBack(partition: 0, epoch: 1, to: 0, writer: writer) }
    }

    @Test func aStoreRefusesADifferentJob() async throws {
        let path = temporaryPath("store.db")
        let store = try CheckpointStore(path: path)
        try await store.bind(job: "tumbling 10s", partitions: 8, writer: writer)
        try await store.bind(job: "tumbling 10s", partitions: 8, writer: writer)
        await #expect(throws: StoreError.self) { try await store.bind(job: "session 5s", partitions: 8, writer: writer) }
        await #expect(throws: StoreError.self) { try await store.bind(job: "tumbling 10s", partitions: 4, writer: writer) }
    }

    @Test(arguments: ["finished = 1", "position = position + 7", "offset = offset + 7", "watermark = watermark + 1",
                      "epoch = 2", "seq = 5", "files = 'other.csv'", "state = x'010203ff'", "checksum = checksum + 1",
                      "checksum = NULL"])
    func aCheckpointRowEditedBesideItsBlobFailsItsChecksum(edit: String) async throws {
        let path = temporaryPath("store.db")
        let store = try CheckpointStore(path: path)
        try await store.bind(job: "test", partitions: 1, writer: writer)
        _ = try await store.claim(partition: 0, epoch: 1)
        var first = checkpoint(0, seq: 1, epoch: 1, offset: 10)
        first.files = ["results-000000000001.csv"]
        try await store.commit(first, fromOffset: 0, output: outputWithRows(1), writer: writer)
        #expect(try await store.checkpoints(partition: 0) == [first], "an untouched checkpoint reads back intact")

        try SQLiteDatabase(path: path).execute("UPDATE sluice_checkpoints SET \(edit)")
        let read = try await store.checkpoints(partition: 0)
        #expect(read.count == 1 && read.allSatisfy { !$0.checksumMatches }, "not caught: \(edit)")
    }

    @Test func aVersion1StoreIsMigratedWithChecksumsForItsRows() async throws {
        let path = temporaryPath("store.db")
        do {
            // The layout sluice wrote before checkpoint checksums.
            let db = try SQLiteDatabase(path: path)
            try db.execute("""
                CREATE TABLE sluice_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
                INSERT INTO sluice_meta VALUES ('schema_version', '1');
                CREATE TABLE sluice_checkpoints(
                    partition INTEGER NOT NULL, seq INTEGER NOT NULL, epoch INTEGER NOT NULL,
                    offset INTEGER NOT NULL, position INTEGER NOT NULL, watermark INTEGER NOT NULL,
                    finished INTEGER NOT NULL, state BLOB NOT NULL, files TEXT NOT NULL,
                    PRIMARY KEY(partition, seq));
                INSERT INTO sluice_checkpoints VALUES (0, 3, 2, 30, 300, 42, 0, x'010203', '');
                """)
        }
        let store = try CheckpointStore(path: path)
        let read = try await store.checkpoints(partition: 0)
        #expect(read == [checkpoint(0, seq: 3, epoch: 2, offset: 30)])
        #expect(read.first?.checksumMatches == true)
    }
}
