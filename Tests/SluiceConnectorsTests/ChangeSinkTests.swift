// A job of kind `changes` writes its change events through the fenced commit into the SQLite sink
// (in the checkpoint's transaction) and the file sink (staged, listed, published), one row each.

import Foundation
import SluiceConnectors
import SluiceCore
import SluiceJob
import SluiceStorage
import Testing

@Suite("Change event sinks") struct ChangeSinkTests {
    static let job = JobSpec(name: "changes", kind: .changes, pipeline: .bidsTumbling, table: "changes")
    static let rows = [
        ChangeRow(lsn: 100, index: 0, commitTimeMs: 5, table: "public.t", op: "insert", before: "", after: "{\"id\":\"1\",\"v\":\"a,\\\"b\"}"),
        ChangeRow(lsn: 100, index: 1, commitTimeMs: 5, table: "public.t", op: "delete", before: "{\"id\":\"1\"}", after: ""),
    ]

    static func output() -> PartitionOutput {
        var output = PartitionOutput(width: 0)
        output.changes = rows
        return output
    }

    static func scratch() throws -> String {
        let dir = NSTemporaryDirectory() + "sluice-change-sink-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func sqliteSinkWritesOneRowPerChangeInTheFencedCommit() async throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/out.db"
        let sink = try SinkFactory.open(uri: "sqlite:" + path, job: Self.job)
        let store = try CheckpointStore(path: path)
        try await store.bind(job: Self.job.fingerprint, partitions: 1, writer: sink)
        let epoch = try await store.claimNext(partition: 0)
        let state = try ChangeLogProcessor(partition: 0).snapshot()
        try await store.commit(Checkpoint(partition: 0, seq: 1, epoch: epoch, offset: 2, position: 108, watermark: 5, finished: false, state: state),
                               fromOffset: 0, output: Self.output(), writer: sink)
        // A fenced-off owner's commit writes nothing.
        _ = try await store.claimNext(partition: 0)
        await #expect(throws: CommitFenced.self) {
            try await store.commit(Checkpoint(partition: 0, seq: 2, epoch: epoch, offset: 4, position: 200, watermark: 5, finished: false, state: state),
                                   fromOffset: 2, output: Self.output(), writer: sink)
        }
        let db = try SQLiteDatabase(path: path)
        let q = try db.prepare("SELECT lsn, lsn_index, commit_time_ms, table_name, op, before, after, sluice_partition, sluice_seq FROM changes ORDER BY lsn, lsn_index")
        var got: [String] = []
        while try q.step() {
            got.append((0..<9).map { q.isNull(Int32($0)) ? "NULL" : q.string(Int32($0)) }.joined(separator: "|"))
        }
        #expect(got == [
            "100|0|5|public.t|insert|NULL|{\"id\":\"1\",\"v\":\"a,\\\"b\"}|0|1",
            "100|1|5|public.t|delete|{\"id\":\"1\"}|NULL|0|1",
        ])
    }

    @Test func fileSinkWritesACSVOfTheChanges() throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let sink = try SinkFactory.open(uri: "file:" + dir, job: Self.job)
        try sink.recover(partition: 0, last: nil)
        let files = try sink.stage(Self.output(), partition: 0, epoch: 1, seq: 1)
        try sink.publish(files: files, partition: 0, epoch: 1)
        let text = try String(contentsOfFile: dir + "/part-00000/" + files[0], encoding: .utf8)
        #expect(text == """
            lsn,lsn_index,commit_time_ms,table_name,op,before,after
            100,0,5,public.t,insert,,"{""id"":""1"",""v"":""a,\\""b""}"
            100,1,5,public.t,delete,"{""id"":""1""}",

            """)
    }

    @Test func jobSpecsOfKindChanges() throws {
        let job = try JobSpec.parse(yaml: "name: cdc\nkind: changes\nsource: postgres-cdc://u@h/db?table=t&partitions=2\ncheckpoint: {interval_ms: 250}\n")
        #expect(job.kind == .changes && job.table == "changes" && job.checkpointIntervalMs == 250 && job.fingerprint == "changes")
        #expect(throws: JobSpecError(path: "window", message: "not used by a job of kind changes (it writes change events as they are); remove it")) {
            try JobSpec.parse(yaml: "kind: changes\nwindow: {kind: tumbling, size_ms: 10}\n")
        }
        #expect(throws: JobSpecError.self) { try JobSpec.parse(yaml: "kind: rows\n") }
        let windows = try JobSpec.parse(yaml: "window: {kind: tumbling, size_ms: 10}\naggregates: [count]\n")
        #expect(windows.kind == .windows && windows.fingerprint == windows.pipeline.fingerprint)
    }

    @Test func cdcURIsAreParsedAndBadOnesNamed() throws {
        let spec = try CdcSpec(uri: "postgres-cdc://alice:secret@127.0.0.1:5432/shop?table=orders&partitions=4&key=customer&sslmode=disable", jobName: "Order-Changes")
        #expect(spec.table == "orders" && spec.partitions == 4 && spec.keyColumn == "customer")
        #expect(spec.slot(partition: 3) == "sluice_order_changes_p3" && spec.publication == "sluice_orders")
        #expect(spec.url.connectionString == "postgres://alice:secret@127.0.0.1:5432/shop?sslmode=disable")
        let defaults = try CdcSpec(uri: "postgres-cdc://u@h/db?table=t&partitions=1&slot=mine&publication=pub")
        #expect(defaults.keyColumn == "id" && defaults.slot(partition: 0) == "mine_p0" && defaults.publication == "pub")
        for (uri, parameter) in [
            ("postgres-cdc://alice:secret@h/db?partitions=2", "table="),
            ("postgres-cdc://alice:secret@h/db?table=t;drop&partitions=2", "table="),
            ("postgres-cdc://alice:secret@h/db?table=t&partitions=0", "partitions="),
            ("postgres-cdc://alice:secret@h/db?table=t&partitions=2&key=a-b", "key="),
            ("postgres-cdc://alice:secret@h/db?table=t&partitions=2&slot=Upper", "slot="),
            ("postgres-cdc://alice:secret@h/db?table=t&partitions=2&publication=", "publication="),
        ] {
            do {
                _ = try CdcSpec(uri: uri)
                Issue.record("\(uri) was accepted")
            } catch {
                let text = "\(error)"
                #expect(text.contains(parameter) && text.contains("write postgres-cdc://") && !text.contains("secret"), "\(text)")
            }
        }
        #expect(throws: SourceError.self) { try SourceFactory(uri: "file:/tmp/x", changeEvents: true) }
    }
}
