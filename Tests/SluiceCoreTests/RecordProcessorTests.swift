import Testing
@testable import SluiceCore

/// The records engine on small inputs whose results are worked out by hand (the property tests
/// compare it with the independent oracle on random ones).
@Suite struct RecordProcessorTests {
    static func orders(dedupe: DedupeSpec? = nil, filter: String? = nil, window: WindowSpec = .tumbling(sizeMs: 60_000),
                       aggregates: [AggregateSpec]? = nil, partitionCheck: Bool = false) -> Pipeline {
        Pipeline(
            schema: Schema(fields: [
                Field(name: "order_id", type: .string),
                Field(name: "customer", type: .string, path: ["customer", "id"]),
                Field(name: "amount", type: .decimal, scale: 2, nullable: true),
                Field(name: "status", type: .string),
                Field(name: "ts", type: .timestamp),
            ]),
            keyFields: ["customer"], timeField: "ts", watermark: WatermarkSpec(maxOutOfOrdernessMs: 1_000),
            window: window,
            aggregates: aggregates ?? [AggregateSpec(.count), AggregateSpec(.sum, "amount"), AggregateSpec(.avg, "amount"),
                                       AggregateSpec(.countDistinct, "order_id"), AggregateSpec(.last, "status")],
            format: .json, partitionCheck: partitionCheck, filter: filter, dedupe: dedupe)
    }

    static func line(_ id: String, _ customer: String, _ amount: String, _ status: String, _ ts: String) -> String {
        #"{"order_id":"\#(id)","customer":{"id":"\#(customer)"},"amount":\#(amount),"status":"\#(status)","ts":"\#(ts)"}"#
    }

    static func run(_ processor: RecordProcessor, _ text: String) -> PartitionOutput {
        var bytes = Array(text.utf8)
        bytes.withUnsafeMutableBytes { _ = processor.process(UnsafeRawBufferPointer($0)) }
        processor.finish()
        return processor.takeOutput()
    }

    @Test func typedAggregatesWithNullsDedupeAndFilter() {
        let text = [
            Self.line("o1", "c1", "10.00", "paid", "2026-01-01T00:00:01Z"),
            Self.line("o2", "c1", "null", "paid", "2026-01-01T00:00:02Z"),
            Self.line("o1", "c1", "10.00", "paid", "2026-01-01T00:00:03Z"),    // duplicate of o1 (2 s later)
            Self.line("o3", "c1", "0.01", "refunded", "2026-01-01T00:00:04Z"), // filtered out
            Self.line("o4", "c1", "2.50", "shipped", "2026-01-01T00:00:04Z"),
            "{not json",
            Self.line("o5", "c2", "1.00", "paid", "2026-01-01T00:01:05+01:00"), // 2025-12-31T23:01:05Z: late
        ].joined(separator: "\n") + "\n"
        let p = RecordProcessor(partition: 0, partitions: 1,
                                pipeline: Self.orders(dedupe: DedupeSpec(field: "order_id", withinMs: 2_000), filter: "status != 'refunded'"))
        let out = Self.run(p, text)
        let start = Timestamps.parse(Array("2026-01-01T00:00:00Z".utf8))!
        // count 3 (o1, o2, o4); sum 12.50; avg of the two non-null amounts 6.25 at scale 6;
        // three distinct ids; last status by event time: o4's.
        #expect(out.records == [RecordRow(windowStart: start, values: [
            .string("c1"), .int64(3), .decimal(1250, scale: 2), .decimal(6_250_000, scale: 6), .int64(3), .string("shipped"),
        ])])
        #expect(out.duplicates == [DuplicateEvent(offset: 2, value: .string("o1"))])
        #expect(out.deadLetters.map(\.offset) == [5])
        #expect(out.late.map(\.offset) == [6])
        #expect(p.eventsFiltered == 1)
        #expect(p.offset == 7)
    }

    @Test func dedupeSpanIsInclusiveAndARepeatAfterItStartsANewSpan() {
        let text = [
            Self.line("a", "c", "1.00", "paid", "1970-01-01T00:00:10Z"),
            Self.line("a", "c", "1.00", "paid", "1970-01-01T00:00:12Z"),  // |12 - 10| = 2 s <= 2 s: duplicate
            Self.line("a", "c", "1.00", "paid", "1970-01-01T00:00:13Z"),  // 3 s after the span's first: kept, new span
            Self.line("a", "c", "1.00", "paid", "1970-01-01T00:00:14Z"),  // 1 s after 13: duplicate
        ].joined(separator: "\n")
        let p = RecordProcessor(partition: 0, partitions: 1, pipeline: Self.orders(dedupe: DedupeSpec(field: "order_id", withinMs: 2_000),
                                                                                 aggregates: [AggregateSpec(.count)]))
        let out = Self.run(p, text)
        #expect(out.duplicates.map(\.offset) == [1, 3])
        #expect(out.records.map { $0.values } == [[.string("c"), .int64(2)]])
    }

    @Test func partitionCheckNamesTheKeysPartition() {
        let key = Array("c1".utf8)
        let owner = KeyPartitioner(.murmur2, partitions: 4).murmur2Partition(key)
        let reading = (owner + 1) % 4
        let p = RecordProcessor(partition: reading, partitions: 4, pipeline: Self.orders(partitionCheck: true))
        let out = Self.run(p, Self.line("o1", "c1", "1.00", "paid", "1970-01-01T00:00:01Z"))
        #expect(out.deadLetters.map(\.reason) == ["key 'c1' belongs to partition \(owner), read in \(reading)"])
        #expect(p.watermark == Int64.max && p.eventsIn == 0)
    }

    @Test func csvWithHeaderCountsRecordsNotLinesAndWaitsForAQuoteAcrossBlocks() {
        let pipeline = Pipeline(
            schema: Schema(fields: [Field(name: "k", type: .string), Field(name: "t", type: .int64), Field(name: "note", type: .string, nullable: true)]),
            keyFields: ["k"], timeField: "t", watermark: WatermarkSpec(maxOutOfOrdernessMs: 0), window: .tumbling(sizeMs: 10),
            aggregates: [AggregateSpec(.count), AggregateSpec(.first, "note"), AggregateSpec(.max, "note")],
            format: .csv(header: true, delimiter: UInt8(ascii: ",")), partitionCheck: false)
        let p = RecordProcessor(partition: 0, partitions: 1, pipeline: pipeline)
        let blocks = ["t,note,k\n1,\"two\nlines", "\",x\n2,,x\n3,\"\",x\n"]
        for block in blocks {
            var bytes = Array(block.utf8)
            bytes.withUnsafeMutableBytes { _ = p.process(UnsafeRawBufferPointer($0)) }
        }
        p.finish()
        let out = p.takeOutput()
        #expect(p.offset == 3)
        // first note by time: "two\nlines"; max by UTF-8 bytes: "two\nlines" ("" < "two…"); the
        // null is skipped.
        #expect(out.records == [RecordRow(windowStart: 0, values: [.string("x"), .int64(3), .string("two\nlines"), .string("two\nlines")])])
    }

    @Test func snapshotResumesExactlyMidStream() throws {
        var lines: [String] = []
        for i in 0..<400 {
            let customer = "c\(i % 7)"
            let id = "o\(i % 150)"  // repeats: dedupe state matters across the snapshot
            let amount = i % 11 == 0 ? "null" : "\(i % 97).\(i % 10)5"
            lines.append(Self.line(id, customer, amount, i % 3 == 0 ? "paid" : "new", "1970-01-01T00:\(String(format2: i / 60)):\(String(format2: i % 60))Z"))
        }
        let pipeline = Self.orders(dedupe: DedupeSpec(field: "order_id", withinMs: 200_000), window: .session(gapMs: 5_000),
                                   aggregates: [AggregateSpec(.count), AggregateSpec(.sum, "amount"), AggregateSpec(.min, "amount"),
                                                AggregateSpec(.countDistinct, "order_id"), AggregateSpec(.first, "status")])
        let whole = Self.run(RecordProcessor(partition: 0, partitions: 1, pipeline: pipeline), lines.joined(separator: "\n") + "\n")

        let first = RecordProcessor(partition: 0, partitions: 1, pipeline: pipeline)
        var head = Array((lines[..<173].joined(separator: "\n") + "\n").utf8)
        head.withUnsafeMutableBytes { _ = first.process(UnsafeRawBufferPointer($0)) }
        let before = first.takeOutput()
        let state = try first.snapshot()
        let second = RecordProcessor(partition: 0, partitions: 1, pipeline: pipeline)
        try second.restore(state)
        let after = Self.run(second, lines[173...].joined(separator: "\n") + "\n")
        func sorted(_ rows: [RecordRow]) -> [String] { rows.map(RecordText.row).sorted() }
        #expect(sorted(before.records + after.records) == sorted(whole.records))
        #expect((before.duplicates + after.duplicates) == whole.duplicates)
        #expect(!whole.duplicates.isEmpty)
    }

    @Test func rowImagesAreHeaderlessCSVInPostgresTextWhateverTheJobsFormat() {
        // A JSON job fed by the outbox or CDC: the row's columns in schema order, PostgreSQL's text.
        let pipeline = Pipeline(
            schema: Schema(fields: [Field(name: "customer", type: .string), Field(name: "ts", type: .timestamp),
                                    Field(name: "amount", type: .decimal, scale: 2, nullable: true), Field(name: "ok", type: .bool)]),
            keyFields: ["customer"], timeField: "ts", watermark: WatermarkSpec(maxOutOfOrdernessMs: 0), window: .tumbling(sizeMs: 60_000),
            aggregates: [AggregateSpec(.count), AggregateSpec(.sum, "amount"), AggregateSpec(.last, "ok")], format: .json, partitionCheck: false)
        let p = RecordProcessor(partition: 0, partitions: 1, pipeline: pipeline, input: .rowImages)
        let out = Self.run(p, "\"c,1\",2026-01-01 00:00:01+00,12.500,t\n\"c,1\",2026-01-01 01:00:02+01,,f\n")
        #expect(out.deadLetters.isEmpty, "\(out.deadLetters)")
        let start = Timestamps.parse(Array("2026-01-01T00:00:00Z".utf8))!
        #expect(out.records == [RecordRow(windowStart: start, values: [.string("c,1"), .int64(2), .decimal(1250, scale: 2), .bool(false)])])
    }

    @Test func anEventThatWouldOverflowASumIsADeadLetterAndChangesNothing() {
        let pipeline = Pipeline(
            schema: Schema(fields: [Field(name: "k", type: .string), Field(name: "t", type: .int64), Field(name: "v", type: .int64)]),
            keyFields: ["k"], timeField: "t", watermark: WatermarkSpec(maxOutOfOrdernessMs: 0), window: .tumbling(sizeMs: 100),
            aggregates: [AggregateSpec(.count), AggregateSpec(.sum, "v")], partitionCheck: false)
        let p = RecordProcessor(partition: 0, partitions: 1, pipeline: pipeline)
        let out = Self.run(p, "a,1,\(Int64.max)\na,2,1\na,3,-5\n")
        #expect(out.deadLetters.map(\.reason) == ["overflow: sum_v of window 0"])
        #expect(out.records == [RecordRow(windowStart: 0, values: [.string("a"), .int64(2), .int64(Int64.max - 5)])])
    }
}

extension String {
    /// Two digits, zero-padded.
    init(format2 v: Int) { self = v < 10 ? "0\(v)" : "\(v)" }
}
