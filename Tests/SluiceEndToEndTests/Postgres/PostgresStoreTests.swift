// The PostgreSQL checkpoint store and sink against the real server: the fenced commit (a zombie of
// epoch 3 against the owner of epoch 4), the seq check, the last two checkpoints, roll-back, the
// job binding, the versioned migrations, and the connection wrapper's errors.

import Foundation
import SluiceConnectors
import SluiceCore
import SluiceJob
import SluiceStorage
import Testing

extension SluiceEndToEndTests.PostgresTests {
    static let job: JobSpec = {
        // The shipped default job shape; `try!` is fine for a constant in a test.
        try! JobSpec.parse(yaml: """
            name: pg-test
            window: {kind: tumbling, size_ms: 10000}
            aggregates: [count, {sum: price}, {max: price}, {avg: price}]
            table: pg_results
            """)
    }()

    /// What a partition emits for `lines` (bid CSV lines), all windows fired.
    static func output(_ lines: [String], partition: Int = 0) -> (PartitionOutput, state: [UInt8], offset: Int64) {
        let processor = PartitionProcessor(partition: partition, pipeline: job.pipeline)
        let text = Array(lines.map { $0 + "\n" }.joined().utf8)
        text.withUnsafeBytes { _ = processor.process($0) }
        processor.finish()
        let state = (try? processor.snapshot()) ?? []
        return (processor.takeOutput(), state, processor.offset)
    }

    static func checkpoint(_ partition: Int, seq: Int64, epoch: Int64, offset: Int64, state: [UInt8] = [1, 2, 3]) -> Checkpoint {
        Checkpoint(partition: partition, seq: seq, epoch: epoch, offset: offset, position: offset * 10,
                   watermark: 42, finished: false, state: state, files: ["a", "b"])
    }

    /// A fresh database with the sink and a checkpoint store bound to job "fp".
    static func boundStore(_ label: String, partitions: Int) async throws -> (url: String, sink: PostgresSink, store: PostgresCheckpointStore) {
        let url = try TestPostgres.freshDatabase(label)
        let sink = try PostgresSink(url: PostgresURL(url), job: job)
        let store = try PostgresCheckpointStore(url: PostgresURL(url), logger: .lines("test", { _ in }))
        try await store.bind(job: "fp", partitions: partitions, writer: sink)
        return (url, sink, store)
    }

    static func rows(_ url: String) throws -> [String] {
        try SinkReader.read(uri: url, job: job).rows.sorted()
    }

    static func texts(_ output: PartitionOutput) -> [String] {
        let formatter = RowFormatter(layout: AggregateLayout(pipeline: job.pipeline))
        return (0..<output.rows.count).map { formatter.text(output.rows, row: $0) }.sorted()
    }

    @Test("A checkpoint row edited beside its blob fails its checksum; rows from before the checksum get one")
    func checkpointRowChecksum() async throws {
        let (url, sink, store) = try await Self.boundStore("checksum", partitions: 1)
        #expect(try await store.claim(partition: 0, epoch: 1))
        let (output, state, offset) = Self.output(["1,7,100,1000"])
        let written = Self.checkpoint(0, seq: 1, epoch: 1, offset: offset, state: state)
        try await store.commit(written, fromOffset: 0, output: output, writer: sink)
        #expect(try await store.checkpoints(partition: 0) == [written])

        let admin = try TestPostgres.connect(url)
        for edit in ["finished = true", "position = position + 7", "watermark = watermark + 1", "epoch = 9", "files = 'a'"] {
            try admin.execute("UPDATE sluice_checkpoints SET \(edit)")
            #expect(try await store.checkpoints(partition: 0).first?.checksumMatches == false, "not caught: \(edit)")
            try admin.execute("DELETE FROM sluice_checkpoints; DELETE FROM sluice_commits")
            try await store.commit(written, fromOffset: 0, output: output, writer: sink)
        }
        // A row as an older sluice wrote it (no checksum) is given one when a store opens.
        try admin.execute("UPDATE sluice_checkpoints SET checksum = NULL")
        #expect(try await store.checkpoints(partition: 0).first?.checksumMatches == false)
        let reopened = try PostgresCheckpointStore(url: PostgresURL(url), logger: .lines("test", { _ in }))
        #expect(try await reopened.checkpoints(partition: 0) == [written])
    }

    @Test("Zombie: epochs 3 and 4 commit to one partition; only epoch 4's rows exist")
    func zombieIsFenced() async throws {
        let url = try TestPostgres.freshDatabase("zombie")
        let sink = try PostgresSink(url: PostgresURL(url), job: Self.job)
        // Two workers: separate stores, separate connections.
        let zombie = try PostgresCheckpointStore(url: PostgresURL(url), logger: .lines("test", { _ in }))
        let owner = try PostgresCheckpointStore(url: PostgresURL(url), logger: .lines("test", { _ in }))
        try await zombie.bind(job: Self.job.pipeline.fingerprint, partitions: 1, writer: sink)
        try await owner.bind(job: Self.job.pipeline.fingerprint, partitions: 1, writer: sink)

        #expect(try await zombie.claim(partition: 0, epoch: 3))
        let (zombieOutput, zombieState, zombieOffset) = Self.output(["1,7,100,1000", "1,8,250,2000", "2,9,5,3000"])
        try await zombie.commit(Self.checkpoint(0, seq: 1, epoch: 3, offset: zombieOffset, state: zombieState),
                                fromOffset: 0, output: zombieOutput, writer: sink)
        #expect(try Self.rows(url) == Self.texts(zombieOutput), "epoch 3 owned the partition: its first commit stands")

        // The partition moves: epoch 4 claims it and restores epoch 3's checkpoint.
        #expect(try await owner.claim(partition: 0, epoch: 4))
        #expect(try await !zombie.claim(partition: 0, epoch: 3), "a stale epoch cannot claim again")
        let restored = try await owner.checkpoints(partition: 0)
        #expect(restored.map(\.seq) == [1] && restored.first?.epoch == 3)

        // The zombie wakes up and commits its seq 2: refused, nothing written.
        let (late, lateState, lateOffset) = Self.output(["5,1,999,50000", "6,1,888,60000"])
        let fenced = await #expect(throws: CommitFenced.self) {
            try await zombie.commit(Self.checkpoint(0, seq: 2, epoch: 3, offset: lateOffset, state: lateState),
                                    fromOffset: zombieOffset, output: late, writer: sink)
        }
        #expect(fenced?.epoch == 3 && fenced?.currentEpoch == 4)
        // The owner commits its seq 2 with other rows.
        let (ownerOutput, ownerState, ownerOffset) = Self.output(["7,3,10,70000", "8,3,20,80000", "8,4,30,80001"])
        try await owner.commit(Self.checkpoint(0, seq: 2, epoch: 4, offset: ownerOffset, state: ownerState),
                               fromOffset: zombieOffset, output: ownerOutput, writer: sink)
        // And the zombie tries again, with the next seq too: still refused.
        await #expect(throws: CommitFenced.self) {
            try await zombie.commit(Self.checkpoint(0, seq: 3, epoch: 3, offset: lateOffset, state: lateState),
                                    fromOffset: ownerOffset, output: late, writer: sink)
        }

        #expect(try Self.rows(url) == (Self.texts(zombieOutput) + Self.texts(ownerOutput)).sorted(),
                "after the move only epoch 4's rows were added")
        let conn = try TestPostgres.connect(url)
        let epochs = try conn.execute("SELECT DISTINCT c.epoch FROM pg_results r JOIN sluice_commits c ON c.partition = r.sluice_partition AND c.seq = r.sluice_seq WHERE r.sluice_seq > 1")
        #expect(epochs.count == 1 && (try? epochs.int64(0, 0)) == 4, "rows committed after seq 1 must all be epoch 4's")
        let log = try await owner.commitLog()
        #expect(log.map(\.epoch) == [3, 4] && log.map(\.seq) == [1, 2])
        #expect(try await owner.epoch(partition: 0) == 4)
        // The claim log (read by the chaos checks): epoch 3 from the start, epoch 4 after seq 1; the
        // zombie's refused claim is not in it.
        let claims = try await owner.claimLog()
        #expect(claims == [.init(partition: 0, epoch: 3, afterSeq: 0), .init(partition: 0, epoch: 4, afterSeq: 1)])
        #expect(try PostgresCheckpointStore.claimLog(conn) == claims)
    }

    @Test("Binary COPY: dead letters and late events with tabs, quotes, backslashes, NUL and non-ASCII text, and avg values, read back exactly")
    func binaryCopyRoundTrip() async throws {
        let (url, sink, store) = try await Self.boundStore("binary", partitions: 3)
        let epoch = try await store.claimNext(partition: 2)
        let (output, state, offset) = Self.output([
            "1,7,100,100000", "1,7,33,100001", "2,8,1,100002",
            "x\ty,\"q\",\\back\\slash",          // a tab, quotes and backslashes: malformed
            "héllo wörld 🚀,1,2,3",                // non-ASCII: malformed
            "3,4,5,6\u{0}",                          // a NUL: malformed, stored as U+FFFD
            "9,9,9,-900000",                          // far behind the watermark: late
        ], partition: 2)
        #expect(output.deadLetters.count == 3 && output.late.count == 1, "the fixture's lines: \(output.deadLetters) \(output.late)")
        try await store.commit(Self.checkpoint(2, seq: 1, epoch: epoch, offset: offset, state: state), fromOffset: 0,
                               output: output, writer: sink)
        #expect(try Self.rows(url) == Self.texts(output), "result rows, avg included, read back exactly")

        let conn = try TestPostgres.connect(url)
        for (suffix, expected) in [("dead_letters", output.deadLetters), ("late", output.late)] {
            let stored = try conn.execute("SELECT partition, \"offset\", reason, line, sluice_seq FROM pg_results_\(suffix) ORDER BY \"offset\"")
            let got = try (0..<stored.count).map { r in
                "\(try stored.int64(r, 0))|\(try stored.int64(r, 1))|\(stored.string(r, 2) ?? "NULL")|\(stored.string(r, 3) ?? "NULL")|\(try stored.int64(r, 4))"
            }
            let want = expected.sorted { $0.offset < $1.offset }.map { line in
                "2|\(line.offset)|\(line.reason)|\(line.line.replacingOccurrences(of: "\u{0}", with: "\u{FFFD}"))|1"
            }
            #expect(got == want, "\(suffix) read back differs")
        }
    }

    @Test("Commit: the seq must follow; the last two checkpoints are kept; roll-back removes later output")
    func commitSequenceAndRollBack() async throws {
        let (url, sink, store) = try await Self.boundStore("commit", partitions: 2)
        let epoch = try await store.claimNext(partition: 1)
        #expect(epoch == 1)
        #expect(try await store.claimNext(partition: 1) == 2)
        #expect(try await store.claimLog() == [.init(partition: 1, epoch: 1, afterSeq: 0), .init(partition: 1, epoch: 2, afterSeq: 0)])
        var outputs: [PartitionOutput] = []
        for seq in Int64(1)...4 {
            let (out, _, _) = Self.output(["\(seq),1,\(seq * 10),\(seq * 20_000)"], partition: 1)
            outputs.append(out)
            try await store.commit(Self.checkpoint(1, seq: seq, epoch: 2, offset: seq * 100), fromOffset: (seq - 1) * 100,
                                   output: out, writer: sink)
        }
        await #expect(throws: StoreError.self) {
            try await store.commit(Self.checkpoint(1, seq: 4, epoch: 2, offset: 500), fromOffset: 400, output: outputs[0], writer: sink)
        }
        await #expect(throws: StoreError.self) {
            try await store.commit(Self.checkpoint(1, seq: 6, epoch: 2, offset: 500), fromOffset: 400, output: outputs[0], writer: sink)
        }
        let kept = try await store.checkpoints(partition: 1)
        #expect(kept.map(\.seq) == [4, 3])
        #expect(kept.first?.state == [1, 2, 3] && kept.first?.files == ["a", "b"] && kept.first?.position == 4_000)
        #expect(try Self.rows(url).count == 4)

        // Fall back to checkpoint 3 (as if 4 were corrupt): 4's rows and log row go, in one fenced transaction.
        try await store.rollBack(partition: 1, epoch: 2, to: 3, writer: sink)
        #expect(try Self.rows(url) == outputs[0..<3].flatMap(Self.texts).sorted())
        #expect(try await store.checkpoints(partition: 1).map(\.seq) == [3])
        #expect(try await store.commitLog().map(\.seq) == [1, 2, 3])
        await #expect(throws: CommitFenced.self) { try await store.rollBack(partition: 1, epoch: 1, to: 0, writer: sink) }

        // Another job cannot resume from this store.
        await #expect(throws: StoreError.self) { try await store.bind(job: "other", partitions: 2, writer: sink) }
        await #expect(throws: StoreError.self) { try await store.bind(job: "fp", partitions: 3, writer: sink) }
    }

    @Test("Upsert mode: rows visible before the checkpoint commits; a replay (crash, zombie) rewrites them without duplicates")
    func upsertIsIdempotent() async throws {
        let url = try TestPostgres.freshDatabase("upsert")
        let sink = try PostgresSink(url: PostgresURL(url + "?mode=upsert&table=up"), job: Self.job)
        let store = try PostgresCheckpointStore(url: PostgresURL(url), logger: .lines("test", { _ in }))
        try await store.bind(job: "fp", partitions: 1, writer: sink)
        #expect(try await store.claim(partition: 0, epoch: 1))
        let (out, state, offset) = Self.output(["1,7,100,1000", "1,8,250,2000", "2,9,5,3000", "3,1,7,15000", "bad line"])
        let readURL = url + "?table=up"
        _ = try sink.stage(out, partition: 0, epoch: 1, seq: 1)
        #expect(try Self.rows(readURL) == Self.texts(out), "upserted rows are visible before the checkpoint commits")
        // The process dies before its commit; the next owner replays the same input and stages it again.
        #expect(try await store.claim(partition: 0, epoch: 2))
        _ = try sink.stage(out, partition: 0, epoch: 2, seq: 1)
        try await store.commit(Self.checkpoint(0, seq: 1, epoch: 2, offset: offset, state: state), fromOffset: 0, output: out, writer: sink)
        // A zombie of epoch 1 stages its (identical) rows once more: harmless.
        _ = try sink.stage(out, partition: 0, epoch: 1, seq: 1)
        let contents = try SinkReader.read(uri: readURL, job: Self.job)
        #expect(contents.rows.sorted() == Self.texts(out), "no duplicates, the same values")
        #expect(contents.deadLetters.count == 1 && out.deadLetters.count == 1)
    }

    @Test("A sink bound to one database refuses a checkpoint store in another, and a SQLite store")
    func sinkAndStoreMustShareTheDatabase() async throws {
        let a = try TestPostgres.freshDatabase("a")
        let b = try TestPostgres.freshDatabase("b")
        let sink = try PostgresSink(url: PostgresURL(a), job: Self.job)
        let store = try PostgresCheckpointStore(url: PostgresURL(b), logger: .lines("test", { _ in }))
        await #expect(throws: SinkError.self) { try await store.bind(job: "fp", partitions: 1, writer: sink) }
        let sqlite = try CheckpointStore(path: NSTemporaryDirectory() + "sluice-pg-\(UUID().uuidString).db")
        await #expect(throws: SinkError.self) { try await sqlite.bind(job: "fp", partitions: 1, writer: sink) }
        let sqliteSink = SQLiteSink(path: "/tmp/x.db", job: Self.job)
        await #expect(throws: StoreError.self) { try await store.bind(job: "fp2", partitions: 1, writer: sqliteSink) }
    }

    @Test("Migrations: versioned, idempotent, safe when four processes start at once; a newer schema is refused")
    func migrations() async throws {
        let url = try TestPostgres.freshDatabase("migrate")
        let conn = try TestPostgres.connect(url)
        let first = try PostgresSchema.migrate(conn)
        #expect(first.from == 0 && first.to == PostgresSchema.latestVersion)
        let again = try PostgresSchema.migrate(conn)
        #expect(again.from == PostgresSchema.latestVersion && again.to == PostgresSchema.latestVersion)
        let versions = try conn.execute("SELECT version FROM sluice_schema_version ORDER BY version")
        #expect(try (0..<versions.count).map { try versions.int64($0, 0) } == PostgresSchema.migrations.map { Int64($0.version) })

        // Four processes' first start at once, on a fresh database: one applies, the others wait and see it done.
        let fresh = try TestPostgres.freshDatabase("migrate4")
        let results = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    try await Task.detached {
                        let c = try TestPostgres.connect(fresh)
                        return try PostgresSchema.migrate(c).from
                    }.value
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.sorted() == [0, 1, 1, 1].map { $0 * PostgresSchema.latestVersion }.sorted())
        let count = try TestPostgres.connect(fresh).execute("SELECT COUNT(*) FROM sluice_schema_version").int64(0, 0)
        #expect(count == Int64(PostgresSchema.migrations.count))

        try conn.execute("INSERT INTO sluice_schema_version(version, description) VALUES (999, 'from the future')")
        #expect(throws: StoreError.self) { try PostgresSchema.migrate(conn) }
        #expect(throws: StoreError.self) { _ = try PostgresCheckpointStore(url: PostgresURL(url), logger: .lines("test", { _ in })) }
    }

    @Test("Connection: SQLSTATE in errors, URLs logged without passwords, Sluice's options kept out of libpq")
    func connectionErrors() throws {
        let conn = try TestPostgres.connect(try TestPostgres.baseURL())
        do {
            try conn.execute("SELECT 1 / $1::int", [.int(0)])
            Issue.record("division by zero did not throw")
        } catch let error as PostgresError {
            #expect(error.sqlState == "22012" && !error.isTransient && !error.connectionLost)
        }
        let r = try conn.execute("SELECT $1::bytea, $2::text, $3::bigint, $4::text IS NULL",
                                 [.bytes([0, 1, 255, 92]), .text("tab\there \\ 'q'"), .int(-5), .null])
        let n = try r.int64(0, 2)
        #expect(r.bytes(0, 0) == [0, 1, 255, 92] && r.string(0, 1) == "tab\there \\ 'q'" && n == -5 && r.bool(0, 3))

        let url = try PostgresURL("postgres://alice:s3cret@127.0.0.1:1/db?sslmode=disable&table=t&mode=upsert&password=hunter2")
        #expect(!url.redacted.contains("s3cret") && !url.redacted.contains("hunter2"))
        #expect(url.redacted == "postgres://alice@127.0.0.1:1/db?sslmode=disable")
        #expect(url.options == ["table": "t", "mode": "upsert"])
        #expect(!url.connectionString.contains("table=") && url.target == "127.0.0.1:1/db")
        // Nothing listens on port 1: a connection error, transient, that does not carry the password.
        do {
            _ = try PostgresConnection(url: url, connectTimeoutSeconds: 2)
            Issue.record("connected to port 1")
        } catch let error as PostgresError {
            #expect(error.isTransient && !"\(error)".contains("s3cret") && !"\(error)".contains("hunter2"))
        }
        #expect(throws: SinkError.self) { try PostgresSink(url: PostgresURL("postgres://h/db?mode=sometimes"), job: Self.job) }
        #expect(throws: SinkError.self) { try PostgresSink(url: PostgresURL("postgres://h/db?table=a;drop"), job: Self.job) }
    }
}
