import Foundation
import SluiceCore
import SluiceJob
import Testing

@Suite struct JobSpecTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    @Test func shippedJobsParse() throws {
        let tumbling = try JobSpec.load(path: Self.root.appendingPathComponent("jobs/bids-tumbling.yaml").path)
        #expect(tumbling.pipeline == .bidsTumbling)
        #expect(tumbling.table == "bids_tumbling")
        #expect(tumbling.checkpointIntervalMs == 1_000)
        let sliding = try JobSpec.load(path: Self.root.appendingPathComponent("jobs/bids-sliding.yaml").path)
        #expect(sliding.pipeline.window == .sliding(sizeMs: 10_000, slideMs: 2_000))
        #expect(sliding.pipeline.aggregates == [AggregateSpec(.count)])
        let session = try JobSpec.load(path: Self.root.appendingPathComponent("jobs/bids-session.yaml").path)
        #expect(session.pipeline.window == .session(gapMs: 5_000))
        #expect(session.pipeline.outputColumns == ["window_start_ms", "auction", "count", "sum_price"])
    }

    @Test func defaultsFillWhatIsLeftOut() throws {
        let job = try JobSpec.parse(yaml: "window: {kind: tumbling, size_ms: 500}\naggregates: [count, {avg: price}]\n")
        #expect(job.pipeline.schema == .bids)
        #expect(job.pipeline.keyField == "auction")
        #expect(job.pipeline.watermark == WatermarkSpec(maxOutOfOrdernessMs: 2_000, idleTimeoutMs: 5_000))
        #expect(job.pipeline.aggregates == [AggregateSpec(.count), AggregateSpec(.avg, "price")])
        #expect(job.table == "results")
    }

    @Test func customSchema() throws {
        let job = try JobSpec.parse(yaml: """
            schema:
              - {name: sensor, type: uint64}
              - {name: reading, type: int64}
              - {name: ts, type: int64}
            key: sensor
            time: ts
            window: {kind: session, gap_ms: 100}
            aggregates: [{min: reading}, {max: reading}]
            """)
        #expect(job.pipeline.schema.fields.map(\.name) == ["sensor", "reading", "ts"])
        #expect(job.pipeline.outputColumns == ["window_start_ms", "sensor", "min_reading", "max_reading"])
    }

    /// Every refusal names the offending field's path.
    @Test(arguments: [
        ("window: {kind: tumbling, size_ms: -5}\naggregates: [count]", "window.size_ms"),
        ("window: {kind: tumbling, size_ms: abc}\naggregates: [count]", "window.size_ms"),
        ("window: {kind: hopping, size_ms: 5}\naggregates: [count]", "window.kind"),
        ("window: {kind: sliding, size_ms: 10, slide_ms: 3}\naggregates: [count]", "window.slide_ms"),
        ("window: {kind: tumbling, size_ms: 10, gap_ms: 3}\naggregates: [count]", "window.gap_ms"),
        ("window: {kind: session}\naggregates: [count]", "window.gap_ms"),
        ("aggregates: [count]", "window"),
        ("window: {kind: tumbling, size_ms: 10}", "aggregates"),
        ("window: {kind: tumbling, size_ms: 10}\naggregates: [count, {median: price}]", "aggregates[1]"),
        ("window: {kind: tumbling, size_ms: 10}\naggregates: [count, {sum: nope}]", "aggregates[1].sum"),
        ("window: {kind: tumbling, size_ms: 10}\naggregates: [{sum: bidder}]", "aggregates[0].sum"),
        ("window: {kind: tumbling, size_ms: 10}\naggregates: [sum]", "aggregates[0]"),
        ("window: {kind: tumbling, size_ms: 10}\naggregates: [count, count]", "aggregates[1]"),
        ("window: {kind: tumbling, size_ms: 10}\naggregates: [count]\nkey: [auction, auction]", "key[1]"),  // an int64 key is fine now (records); a repeated one is not
        ("window: {kind: tumbling, size_ms: 10}\naggregates: [count]\ntime: missing", "time"),
        ("window: {kind: tumbling, size_ms: 10}\naggregates: [count]\nwatermark: {max_out_of_orderness_ms: -1}", "watermark.max_out_of_orderness_ms"),
        ("window: {kind: tumbling, size_ms: 10}\naggregates: [count]\ncheckpoint: {interval_ms: 0}", "checkpoint.interval_ms"),
        ("window: {kind: tumbling, size_ms: 10}\naggregates: [count]\ntable: drop table", "table"),
        ("window: {kind: tumbling, size_ms: 10}\naggregates: [count]\nwindoww: 3", "windoww"),
        ("window: {kind: tumbling, size_ms: 99999999999999}\naggregates: [count]", "window.size_ms"),
        ("schema: [{name: a, type: float}]\nwindow: {kind: tumbling, size_ms: 10}\naggregates: [count]", "schema[0].type"),
        ("window: [1, 2]\naggregates: [count]", "window"),
    ])
    func badSpecNamesTheField(yaml: String, path: String) {
        do {
            _ = try JobSpec.parse(yaml: yaml)
            Issue.record("accepted a bad spec: \(yaml)")
        } catch let error as JobSpecError {
            #expect(error.path == path, "\(error)")
            #expect(error.description.contains(path))
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    /// Names that would break the store or the sink's tables are refused at load, naming the field.
    @Test(arguments: [
        // The checkpoint store's tables share the sink's database (any case: SQLite folds it).
        ("table: sluice_checkpoints", "table", "checkpoint store"),
        ("table: sluice_meta", "table", "checkpoint store"),
        ("table: Sluice_Partitions", "table", "checkpoint store"),
        // 45 bytes fit with every derived name; 46 would make a 64-byte `<table>_dead_letters_pkey`.
        ("table: " + String(repeating: "t", count: 46), "table", "63-byte"),
        ("table: " + String(repeating: "t", count: 62), "table", "63-byte"),
        // Output columns: window_start_ms, the key, the aggregates, and the sink's sluice_* columns.
        ("schema: [{name: window_start_ms, type: uint64}, {name: ts, type: int64}]\nkey: window_start_ms\ntime: ts", "key", "window start"),
        ("schema: [{name: count, type: uint64}, {name: ts, type: int64}]\nkey: count\ntime: ts", "aggregates[0]", "already the key"),
        ("schema: [{name: sum_v, type: uint64}, {name: v, type: int64}, {name: ts, type: int64}]\nkey: sum_v\ntime: ts\naggregates: [{sum: v}]", "aggregates[0]", "already the key"),
        ("schema: [{name: sluice_seq, type: uint64}, {name: ts, type: int64}]\nkey: sluice_seq\ntime: ts", "key", "Sluice's own"),
        ("schema: [{name: k, type: uint64}, {name: " + String(repeating: "v", count: 60) + ", type: int64}, {name: ts, type: int64}]\nkey: k\ntime: ts\naggregates: [{sum: " + String(repeating: "v", count: 60) + "}]", "aggregates[0]", "63 bytes"),
    ])
    func namesThatCollideAreRefused(spec: String, path: String, says: String) {
        var yaml = "window: {kind: tumbling, size_ms: 10}\n" + spec
        if !spec.contains("aggregates:") { yaml += "\naggregates: [count]" }
        do {
            _ = try JobSpec.parse(yaml: yaml)
            Issue.record("accepted: \(yaml)")
        } catch let error as JobSpecError {
            #expect(error.path == path, "\(error)")
            #expect(error.description.contains(says), "\(error)")
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test func theLongestTableNameThatFitsIsAccepted() throws {
        let name = String(repeating: "t", count: TableNames.maxTableBytes)
        #expect(TableNames.maxTableBytes == 45)
        #expect(try JobSpec.parse(yaml: "window: {kind: tumbling, size_ms: 10}\naggregates: [count]\ntable: \(name)").table == name)
        for suffix in TableNames.derivedSuffixes { #expect((name + suffix).utf8.count <= 63) }
    }

    @Test func invalidYAMLIsRefusedClearly() {
        #expect(throws: JobSpecError.self) { try JobSpec.parse(yaml: "window: [unclosed") }
        #expect(throws: JobSpecError.self) { try JobSpec.parse(yaml: "") }
        #expect(throws: JobSpecError.self) { try JobSpec.load(path: "/nonexistent/job.yaml") }
    }

    @Test func theShippedViewJobParses() throws {
        let view = try JobSpec.load(path: Self.root.appendingPathComponent("jobs/customers-view.yaml").path)
        #expect(view.kind == .view && view.table == "customers_view" && view.pipeline.keyFields == ["id"])
        #expect(view.pipeline.recordFields.map(\.name) == ["id", "tier", "credit", "active", "gold"])
        #expect(view.pipeline.partitioner == .murmur2 && view.fingerprint.hasPrefix("view "))
    }

    @Test(arguments: [
        ("kind: view\nkey: id\n", "schema"),
        ("kind: view\nschema: [{name: id, type: string}]\n", "key"),
        ("kind: view\nschema: [{name: id, type: string}]\nkey: id\nwindow: {kind: tumbling, size_ms: 5}\n", "window"),
        ("kind: view\nschema: [{name: id, type: string}]\nkey: id\naggregates: [count]\n", "aggregates"),
        ("kind: view\nschema: [{name: id, type: string}]\nkey: id\ntime: id\n", "time"),
        ("kind: view\nschema: [{name: id, type: string}]\nkey: nope\n", "key"),
        ("kind: view\nschema: [{name: id, type: string, nullable: true}]\nkey: id\n", "key"),
        ("kind: view\nschema: [{name: id, type: float64}]\nkey: id\n", "key"),
        ("kind: view\nschema: [{name: id, type: string}]\nkey: k\nderive: [{name: k, expr: \"lower(id)\"}]\n", "key"),
        ("kind: view\nschema: [{name: id, type: string}, {name: sluice_x, type: int64}]\nkey: id\n", "schema"),
        ("kind: view\nschema: [{name: id, type: string}]\nkey: id\nfilter: \"id + 1\"\n", "filter"),
        ("kind: nope\n", "kind"),
    ])
    func badViewJobsNameTheField(yaml: String, path: String) {
        #expect {
            try JobSpec.parse(yaml: yaml)
        } throws: { error in
            (error as? JobSpecError)?.path == path
        }
    }
}
