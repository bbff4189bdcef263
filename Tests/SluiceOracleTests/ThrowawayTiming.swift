import Testing
import Foundation
import SluiceCore
import SluiceWorkload
@testable import SluiceOracle

@Suite struct ThrowawayTiming {
    @Test(arguments: ["tumbling", "sliding", "session"]) func timing(kind: String) throws {
        let window: WindowSpec = kind == "tumbling" ? .tumbling(sizeMs: 10_000) : kind == "sliding" ? .sliding(sizeMs: 10_000, slideMs: 2_000) : .session(gapMs: 5_000)
        let p = Pipeline(schema: .bids, keyField: "auction", timeField: "event_time_ms", watermark: WatermarkSpec(maxOutOfOrdernessMs: 2000), window: window,
                         aggregates: [AggregateSpec(.count), AggregateSpec(.sum, "price"), AggregateSpec(.max, "price"), AggregateSpec(.avg, "price")])
        let input = try WorkloadInput.parse("gen:seed=1,events=2000000,partitions=8")
        var t0 = Date()
        var texts: [[UInt8]] = []
        for i in 0..<8 { texts.append(try input.readPartition(i)) }
        print("TIMING gen \(Date().timeIntervalSince(t0))")
        t0 = Date()
        let r = try Oracle.run(pipeline: p, input: input)
        print("TIMING \(kind) total(with gen) \(Date().timeIntervalSince(t0)) rows=\(r.rows.count) late=\(r.late.count) dead=\(r.deadLetters.count)")
    }
}
