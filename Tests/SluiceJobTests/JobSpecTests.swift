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
        ("window: {kind: tumbling, size_ms: 10}\naggregates: [count]\nkey: price", "key"),
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

    @Test func invalidYAMLIsRefusedClearly() {
        #expect(throws: JobSpecError.self) { try JobSpec.parse(yaml: "window: [unclosed") }
        #expect(throws: JobSpecError.self) { try JobSpec.parse(yaml: "") }
        #expect(throws: JobSpecError.self) { try JobSpec.load(path: "/nonexistent/job.yaml") }
    }
}
