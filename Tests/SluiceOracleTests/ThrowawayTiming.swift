import Testing
import Foundation
import SluiceCore
import SluiceWorkload
@testable import SluiceOracle

@Suite struct ThrowawayTiming {
    @Test func timing() throws {
        for kind in (ProcessInfo.processInfo.environment["KINDS"] ?? "tumbling,sliding,session").split(separator: ",").map(String.init) {
            let window: WindowSpec = kind == "tumbling" ? .tumbling(sizeMs: 10_000) : kind == "sliding" ? .sliding(sizeMs: 10_000, slideMs: 2_000) : .session(gapMs: 5_000)
            let p = Pipeline(schema: .bids, keyField: "auction", timeField: "event_time_ms", watermark: WatermarkSpec(maxOutOfOrdernessMs: 2000), window: window,
                             aggregates: kind == "sliding" ? [AggregateSpec(.count)] : kind == "session" ? [AggregateSpec(.count), AggregateSpec(.sum, "price")] : [AggregateSpec(.count), AggregateSpec(.sum, "price"), AggregateSpec(.max, "price")])
            let input = try WorkloadInput.parse("gen:seed=1,events=\(ProcessInfo.processInfo.environment["EVENTS"] ?? "2000000"),partitions=8")
            let t0 = Date()
            let r = try Oracle.run(pipeline: p, input: input)
            print("TIMING \(kind) run(input:) \(Date().timeIntervalSince(t0)) rows=\(r.rows.count) late=\(r.late.count) dead=\(r.deadLetters.count)")
        }
    }
}
