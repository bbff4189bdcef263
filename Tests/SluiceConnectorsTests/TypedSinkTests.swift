// A records job's typed output through each sink, driven as the runner drives it (stage, the
// fenced commit, publish), read back by `SinkReader` and compared with `RecordText.row` text
// written out by hand: every type, nulls, a string with a comma and a quote, an empty string, a
// negative decimal, a uint64 above Int64.max, a timestamp before 1970; and dedupe's duplicates.

import Foundation
import SluiceConnectors
@testable import SluiceCore
import SluiceJob
import SluiceStorage
import Testing

enum TypedOutput {
    /// Key `customer, paid`; aggregates of every output type.
    static let job: JobSpec = {
        let schema = Schema(fields: [
            Field(name: "customer", type: .string),
            Field(name: "paid", type: .bool),
            Field(name: "amount", type: .decimal, scale: 2, nullable: true),
            Field(name: "big", type: .uint64, nullable: true),
            Field(name: "ts", type: .timestamp),
            Field(name: "price", type: .float64, nullable: true),
            Field(name: "note", type: .string, nullable: true),
        ])
        let pipeline = Pipeline(schema: schema, keyFields: ["customer", "paid"], timeField: "ts", watermark: WatermarkSpec(),
                                window: .tumbling(sizeMs: 60_000),
                                aggregates: [AggregateSpec(.count), AggregateSpec(.sum, "amount"), AggregateSpec(.first, "big"),
                                             AggregateSpec(.max, "ts"), AggregateSpec(.avg, "price"), AggregateSpec(.last, "note")])
        return JobSpec(name: "typed", pipeline: pipeline, table: "typed")
    }()

    static let rows = [
        RecordRow(windowStart: 0, values: [.string("a,b \"q\""), .bool(true), .int64(3), .decimal(-1234, scale: 2),
                                           .uint64(UInt64.max - 5), .timestamp(-86_400_001), .float64(0.1), .string("")]),
        RecordRow(windowStart: -60_000, values: [.string(""), .bool(false), .int64(1), .null, .null, .null, .null, .null]),
        RecordRow(windowStart: 1_700_000_000_000, values: [.string("plain"), .bool(true), .int64(2), .decimal(5, scale: 2),
                                                           .uint64(7), .timestamp(1_700_000_000_123), .float64(-2.5e-7),
                                                           .string("line\nbreak")]),
        RecordRow(windowStart: 120_000, values: [.string("zero"), .bool(false), .int64(0), .decimal(0, scale: 2), .uint64(0),
                                                 .timestamp(0), .float64(1e300), .string(" ")]),
        RecordRow(windowStart: 180_000, values: [.string("ü \u{1F600}"), .bool(true), .int64(Int64.max), .decimal(Int64.min, scale: 2),
                                                 .uint64(UInt64.max), .timestamp(-62_135_596_800_000), .float64(-0.0), .null]),
    ]

    /// The rows above as the oracle renders them, by hand.
    static let texts = [
        "0,\"a,b \"\"q\"\"\",true,3,-12.34,18446744073709551610,1969-12-30T23:59:59.999Z,0.1,\"\"",
        "-60000,\"\",false,1,,,,,",
        "1700000000000,plain,true,2,0.05,7,2023-11-14T22:13:20.123Z,-2.5e-07,\"line\nbreak\"",
        "120000,zero,false,0,0.00,0,1970-01-01T00:00:00.000Z,1e+300, ",
        "180000,ü \u{1F600},true,9223372036854775807,-92233720368547758.08,18446744073709551615,0001-01-01T00:00:00.000Z,-0.0,",
    ]

    /// SQLite stores a REAL without a fraction as an integer, so -0.0 comes back as 0.0 (the
    /// one value it cannot keep; `sluice verify` compares floats by value, where they are equal).
    static let sqliteTexts = texts.map { $0.replacingOccurrences(of: ",-0.0,", with: ",0.0,") }

    static let duplicates = [
        DuplicateEvent(offset: 5, value: .string("o,\"1\"")),
        DuplicateEvent(offset: 9, value: .null),
        DuplicateEvent(offset: 11, value: .string("")),
        DuplicateEvent(offset: 12, value: .decimal(-7, scale: 2)),
    ]

    static func duplicateEntries(partition: Int) -> [DuplicateEntry] {
        [DuplicateEntry(partition: partition, offset: 5, value: "o,\"1\""), DuplicateEntry(partition: partition, offset: 9, value: nil),
         DuplicateEntry(partition: partition, offset: 11, value: ""), DuplicateEntry(partition: partition, offset: 12, value: "-0.07")]
    }

    static func output(records: [RecordRow] = rows, duplicates: [DuplicateEvent] = duplicates) -> PartitionOutput {
        var output = PartitionOutput(width: 0)
        output.records = records
        output.duplicates = duplicates
        output.deadLetters = [RejectedLine(offset: 3, reason: "field 'amount': bad", line: "x,\"multi\nline\"")]
        return output
    }

    static func checkpoint(seq: Int64, files: [String]) -> Checkpoint {
        Checkpoint(partition: 1, seq: seq, epoch: 1, offset: seq * 10, position: seq * 100, watermark: 0, finished: false,
                   state: [1], files: files)
    }

    /// One checkpoint's worth, as `PartitionRunner` commits it.
    static func commit(_ output: PartitionOutput, seq: Int64, sink: any Sink, store: any CheckpointStoring) async throws {
        let files = try sink.stage(output, partition: 1, epoch: 1, seq: seq)
        try await store.commit(checkpoint(seq: seq, files: files), fromOffset: (seq - 1) * 10, output: output, writer: sink)
        try sink.publish(files: files, partition: 1, epoch: 1)
    }

    static func temporaryDirectory(_ label: String) -> String {
        let dir = NSTemporaryDirectory() + "sluice-typed-\(label)-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }
}

@Suite("Typed sinks") struct TypedSinkTests {
    @Test("The hand-written texts are RecordText.row of the rows")
    func textsAreRecordText() {
        #expect(TypedOutput.rows.map(RecordText.row) == TypedOutput.texts)
        #expect(TypedOutput.job.pipeline.isIntegerCSV == false)
    }

    @Test("SQLite: typed columns, read back as RecordText rows; duplicates; a roll-back removes them")
    func sqlite() async throws {
        let dir = TypedOutput.temporaryDirectory("sqlite")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = (dir as NSString).appendingPathComponent("out.db")
        let sink = try SinkFactory.open(uri: "sqlite:" + path, job: TypedOutput.job)
        let store = try CheckpointStore(path: sink.defaultStatePath)
        try await store.bind(job: "typed", partitions: 2, writer: sink)
        #expect(try await store.claim(partition: 1, epoch: 1))
        try await TypedOutput.commit(TypedOutput.output(), seq: 1, sink: sink, store: store)

        let contents = try SinkReader.read(uri: "sqlite:" + path, job: TypedOutput.job)
        #expect(contents.rows.sorted() == TypedOutput.sqliteTexts.sorted())
        #expect(contents.duplicates == TypedOutput.duplicateEntries(partition: 1))
        #expect(contents.deadLetters == [RejectedEntry(partition: 1, offset: 3, line: "x,\"multi\nline\"")])

        // The declared types: a decimal is TEXT, a uint64 the INTEGER of its bit pattern.
        let db = try SQLiteDatabase(path: path)
        let types = try db.prepare("SELECT typeof(sum_amount), typeof(first_big), first_big, typeof(max_ts), max_ts, typeof(paid) FROM typed WHERE window_start_ms = 0")
        #expect(try types.step())
        #expect(types.string(0) == "text" && types.string(1) == "integer" && types.int64(2) == -6)
        #expect(types.string(3) == "text" && types.string(4) == "1969-12-30T23:59:59.999Z" && types.string(5) == "integer")

        // A second commit, then a roll-back past it: its rows and duplicates go.
        try await TypedOutput.commit(TypedOutput.output(records: [TypedOutput.rows[0]], duplicates: [DuplicateEvent(offset: 40, value: .int64(1))]),
                                     seq: 2, sink: sink, store: store)
        #expect(try SinkReader.read(uri: "sqlite:" + path, job: TypedOutput.job).duplicates.count == 5)
        try await store.rollBack(partition: 1, epoch: 1, to: 1, writer: sink)
        let after = try SinkReader.read(uri: "sqlite:" + path, job: TypedOutput.job)
        #expect(after.rows.sorted() == TypedOutput.sqliteTexts.sorted())
        #expect(after.duplicates == TypedOutput.duplicateEntries(partition: 1))
    }

    @Test("Files: CSV with a header in RecordText form; duplicates files staged, published and recovered")
    func files() async throws {
        let dir = TypedOutput.temporaryDirectory("files")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = (dir as NSString).appendingPathComponent("out")
        let sink = try SinkFactory.open(uri: "file:" + out, job: TypedOutput.job)
        let store = try CheckpointStore(path: sink.defaultStatePath)
        try await store.bind(job: "typed", partitions: 2, writer: sink)
        #expect(try await store.claim(partition: 1, epoch: 1))
        try sink.recover(partition: 1, last: nil)
        try await TypedOutput.commit(TypedOutput.output(), seq: 1, sink: sink, store: store)

        let part = FileSink.partitionDirectory(out, partition: 1)
        let results = try String(contentsOfFile: (part as NSString).appendingPathComponent("results-000000000001.csv"), encoding: .utf8)
        #expect(results == "window_start_ms,customer,paid,count,sum_amount,first_big,max_ts,avg_price,last_note\n"
                + TypedOutput.texts.joined(separator: "\n") + "\n")
        let duplicates = try String(contentsOfFile: (part as NSString).appendingPathComponent("duplicates-000000000001.csv"), encoding: .utf8)
        #expect(duplicates == "partition,offset,value\n1,5,\"o,\"\"1\"\"\"\n1,9,\n1,11,\"\"\n1,12,-0.07\n")

        let contents = try SinkReader.read(uri: "file:" + out, job: TypedOutput.job)
        #expect(contents.rows == TypedOutput.texts)
        #expect(contents.duplicates == TypedOutput.duplicateEntries(partition: 1))
        #expect(contents.deadLetters == [RejectedEntry(partition: 1, offset: 3, line: "x,\"multi\nline\"")])

        // Staged but never committed (a crash before the commit): recovery removes the staged
        // duplicates file; a published one beyond the committed seq goes too.
        _ = try sink.stage(TypedOutput.output(), partition: 1, epoch: 1, seq: 2)
        let staging = (part as NSString).appendingPathComponent(".staging")
        #expect(try FileManager.default.contentsOfDirectory(atPath: staging).contains("e1-duplicates-000000000002.csv"))
        try Data("x\n".utf8).write(to: URL(fileURLWithPath: (part as NSString).appendingPathComponent("duplicates-000000000003.csv")))
        try sink.recover(partition: 1, last: try await store.checkpoints(partition: 1).last)
        #expect(try FileManager.default.contentsOfDirectory(atPath: staging).isEmpty)
        #expect(try Set(FileManager.default.contentsOfDirectory(atPath: part)) == [
            ".staging", "results-000000000001.csv", "duplicates-000000000001.csv", "dead-000000000001.csv"])
    }

    @Test("Integer jobs write no duplicates table and read back as before")
    func integerJobUnchanged() async throws {
        let dir = TypedOutput.temporaryDirectory("integer")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = (dir as NSString).appendingPathComponent("out.db")
        let job = JobSpec.defaultBidsTumbling
        let sink = try SinkFactory.open(uri: "sqlite:" + path, job: job)
        let store = try CheckpointStore(path: path)
        try await store.bind(job: "bids", partitions: 1, writer: sink)
        let db = try SQLiteDatabase(path: path)
        let tables = try db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'results%' ORDER BY name")
        var names: [String] = []
        while try tables.step() { names.append(tables.string(0)) }
        #expect(names == ["results", "results_dead_letters", "results_late"])
    }
}
