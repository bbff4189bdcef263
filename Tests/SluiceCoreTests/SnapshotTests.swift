@testable import SluiceCore
import Testing

/// Snapshots taken at random points and restored into a fresh processor continue exactly like an
/// uninterrupted run; a damaged snapshot is refused, never half-restored silently.
@Suite struct SnapshotTests {
    static let pipelines: [Pipeline] = [
        .bidsTumbling,
        Pipeline(schema: .bids, keyField: "auction", timeField: "event_time_ms", watermark: WatermarkSpec(maxOutOfOrdernessMs: 30),
                 window: .sliding(sizeMs: 100, slideMs: 20),
                 aggregates: [AggregateSpec(.count), AggregateSpec(.min, "price"), AggregateSpec(.avg, "price")]),
        Pipeline(schema: .bids, keyField: "auction", timeField: "event_time_ms", watermark: WatermarkSpec(maxOutOfOrdernessMs: 30),
                 window: .session(gapMs: 40), aggregates: [AggregateSpec(.count), AggregateSpec(.sum, "price")]),
    ]

    /// Lines with a few keys, times that move forward with disorder and the odd late event.
    func text(seed: UInt64, lines: Int) -> [UInt8] {
        var rng = SplitMix64(seed: seed)
        var out = ""
        var t: Int64 = 1_000
        for _ in 0..<lines {
            t += Int64(rng.next() % 5)
            let time = rng.next() % 10 == 0 ? t - Int64(rng.next() % 200) : t
            out += "\(rng.next() % 7),1,\(1 + rng.next() % 500),\(time)\n"
        }
        return Array(out.utf8)
    }

    func rows(_ p: PartitionProcessor, _ output: PartitionOutput) -> [String] {
        let f = RowFormatter(layout: p.layout)
        return (0..<output.rows.count).map { f.text(output.rows, row: $0) }
    }

    func splitAtLine(_ bytes: [UInt8], near fraction: Double) -> Int {
        var cut = Int(Double(bytes.count) * fraction)
        while cut < bytes.count, bytes[cut - 1] != 10 { cut += 1 }
        return cut
    }

    @Test(arguments: 0..<3)
    func restoredRunEqualsUninterruptedRun(pipelineIndex: Int) throws {
        let pipeline = Self.pipelines[pipelineIndex]
        for seed in 0..<40 as Range<UInt64> {
            let input = text(seed: seed, lines: 2_000)
            let whole = PartitionProcessor(partition: 0, pipeline: pipeline)
            _ = input.withUnsafeBytes { whole.process($0) }
            whole.finish()
            let expected = rows(whole, whole.output).sorted()

            var rng = SplitMix64(seed: seed &* 31)
            let cut = splitAtLine(input, near: Double(rng.next() % 1_000) / 1_000 * 0.9 + 0.05)
            let first = PartitionProcessor(partition: 0, pipeline: pipeline)
            _ = input[..<cut].withUnsafeBytes { first.process($0) }
            var got = rows(first, first.takeOutput())
            let snapshot = try first.snapshot()

            let second = PartitionProcessor(partition: 0, pipeline: pipeline)
            try second.restore(snapshot)
            #expect(second.offset == first.offset)
            #expect(second.watermark == first.watermark)
            #expect(second.openWindows == first.openWindows)
            _ = input[cut...].withUnsafeBytes { second.process($0) }
            second.finish()
            got += rows(second, second.output)
            #expect(got.sorted() == expected, "seed \(seed)")
            #expect(second.offset == whole.offset)
            #expect(second.eventsIn == whole.eventsIn)
        }
    }

    @Test func damagedSnapshotsAreRefused() throws {
        let p = PartitionProcessor(partition: 0, pipeline: .bidsTumbling)
        let input = text(seed: 9, lines: 3_000)
        _ = input.withUnsafeBytes { p.process($0) }
        let snapshot = try p.snapshot()
        #expect(p.openWindows > 0)
        var rng = SplitMix64(seed: 5)
        for _ in 0..<300 {
            var damaged = snapshot
            let i = Int(rng.next() % UInt64(damaged.count))
            damaged[i] ^= UInt8(1 + rng.next() % 255)
            let fresh = PartitionProcessor(partition: 0, pipeline: .bidsTumbling)
            #expect(throws: (any Error).self) { try fresh.restore(damaged) }
        }
        for length in [0, 1, 10, snapshot.count / 2, snapshot.count - 1] {
            let fresh = PartitionProcessor(partition: 0, pipeline: .bidsTumbling)
            #expect(throws: (any Error).self) { try fresh.restore(Array(snapshot.prefix(length))) }
        }
    }
}
