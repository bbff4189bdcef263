import Testing
import Foundation
import SluiceCore
import SluiceWorkload
@testable import SluiceOracle

@Suite struct ThrowawayTiming {
    func cpu() -> Double { var ts = timespec(); clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts); return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9 }
    @Test func timing() throws {
        let input = try WorkloadInput.parse("gen:seed=1,events=2000000,partitions=8")
        var t0 = Date(); var c0 = cpu()
        for p in 0..<8 { _ = try input.readPartition(p) }
        print("TIMING generator-only (8 partitions, serial) wall \(Date().timeIntervalSince(t0)) cpu \(cpu() - c0)")
        for kind in ["tumbling", "sliding", "session"] {
            let window: WindowSpec = kind == "tumbling" ? .tumbling(sizeMs: 10_000) : kind == "sliding" ? .sliding(sizeMs: 10_000, slideMs: 2_000) : .session(gapMs: 5_000)
            let p = Pipeline(schema: .bids, keyField: "auction", timeField: "event_time_ms", watermark: WatermarkSpec(maxOutOfOrdernessMs: 2000), window: window,
                             aggregates: kind == "sliding" ? [AggregateSpec(.count)] : kind == "session" ? [AggregateSpec(.count), AggregateSpec(.sum, "price")] : [AggregateSpec(.count), AggregateSpec(.sum, "price"), AggregateSpec(.max, "price")])
            t0 = Date(); c0 = cpu()
            let r = try Oracle.run(pipeline: p, input: input)
            print("TIMING \(kind) run(input:) wall \(Date().timeIntervalSince(t0)) cpu \(cpu() - c0) rows=\(r.rows.count) late=\(r.late.count) dead=\(r.deadLetters.count)")
        }
    }
}
