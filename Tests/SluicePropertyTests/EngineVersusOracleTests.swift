import SluiceCore
import SluiceOracle
import SluiceWorkload
import Testing

/// The engine against the independent oracle on thousands of random partitions: disordered, late
/// and malformed events, random window parameters, random batch sizes, and snapshots restored into
/// a fresh processor at random points. Rows must match as multisets, late and dead-letter offsets
/// as sets.
@Suite struct EngineVersusOracleTests {
    @Test(arguments: ["tumbling", "sliding", "session"])
    func randomPartitionsMatchTheOracle(kind: String) throws {
        var rng = SplitMix64(seed: 0x5EED_0000 ^ UInt64(kind.utf8.count))
        for trial in 0..<1_500 {
            let pipeline = randomPipeline(kind: kind, rng: &rng)
            let text = randomPartition(rng: &rng)
            let expected = Oracle.run(pipeline: pipeline, partition: 3, text: text)
            let actual = try runEngine(pipeline: pipeline, text: text, rng: &rng)
            #expect(actual.rows == expected.rows, "trial \(trial), \(pipeline.window): rows differ")
            #expect(actual.late == expected.late.map(\.offset), "trial \(trial): late offsets differ")
            #expect(actual.dead == expected.deadLetters.map(\.offset), "trial \(trial): dead-letter offsets differ")
            if actual.rows != expected.rows || actual.late != expected.late.map(\.offset) { return }
        }
    }

    @Test func generatedWorkloadMatchesTheOracleForEveryJob() throws {
        let config = WorkloadConfig(seed: 99, events: 60_000, partitions: 4, keys: 400)
        let input = WorkloadInput.generator(config)
        var rng = SplitMix64(seed: 1)
        for pipeline in [Pipeline.bidsTumbling, randomPipeline(kind: "sliding", rng: &rng), randomPipeline(kind: "session", rng: &rng)] {
            for p in 0..<config.partitions {
                let text = try input.readPartition(p)
                let expected = Oracle.run(pipeline: pipeline, partition: p, text: text)
                let actual = try runEngine(pipeline: pipeline, text: text, rng: &rng)
                #expect(actual.rows == expected.rows)
                #expect(actual.late == expected.late.map(\.offset))
                #expect(actual.dead == expected.deadLetters.map(\.offset))
                #expect(!expected.rows.isEmpty)
            }
        }
    }
}

struct EngineResult {
    var rows: [String] = []
    var late: [Int] = []
    var dead: [Int] = []
}

/// Runs the engine over `text` in random whole-line batches, snapshotting and restoring into a
/// new processor at random batch boundaries.
func runEngine(pipeline: Pipeline, text: [UInt8], rng: inout SplitMix64) throws -> EngineResult {
    var processor = PartitionProcessor(partition: 3, pipeline: pipeline)
    let formatter = RowFormatter(layout: processor.layout)
    var result = EngineResult()
    func collect(_ output: PartitionOutput) {
        for row in 0..<output.rows.count { result.rows.append(formatter.text(output.rows, row: row)) }
        result.late += output.late.map { Int($0.offset) }
        result.dead += output.deadLetters.map { Int($0.offset) }
    }
    let lineEnds = text.indices.filter { text[$0] == 10 }
    var start = 0
    var endIndex = 0
    while start < text.count {
        // Take 1 to 40 whole lines (or, at the end, whatever is left).
        endIndex += Int(rng.next() % 40)
        let cut = endIndex < lineEnds.count ? lineEnds[endIndex] + 1 : text.count
        endIndex += 1
        text[start..<cut].withUnsafeBytes { _ = processor.process($0) }
        start = cut
        if rng.next() % 8 == 0 {
            collect(processor.takeOutput())
            let snapshot = try processor.snapshot()
            processor = PartitionProcessor(partition: 3, pipeline: pipeline)
            try processor.restore(snapshot)
        }
    }
    processor.finish()
    collect(processor.takeOutput())
    result.rows.sort()
    result.late.sort()
    result.dead.sort()
    return result
}

func randomPipeline(kind: String, rng: inout SplitMix64) -> Pipeline {
    let window: WindowSpec
    switch kind {
    case "tumbling": window = .tumbling(sizeMs: Int64(1 + rng.next() % 50))
    case "sliding":
        let slide = Int64(1 + rng.next() % 10)
        window = .sliding(sizeMs: slide * Int64(1 + rng.next() % 5), slideMs: slide)
    default: window = .session(gapMs: Int64(1 + rng.next() % 20))
    }
    let all: [AggregateSpec] = [AggregateSpec(.count), AggregateSpec(.sum, "price"), AggregateSpec(.min, "price"),
                                AggregateSpec(.max, "price"), AggregateSpec(.avg, "price")]
    var aggregates = all.filter { _ in rng.next() % 2 == 0 }
    if aggregates.isEmpty { aggregates = [all[Int(rng.next() % 5)]] }
    return Pipeline(schema: .bids, keyField: "auction", timeField: "event_time_ms",
                    watermark: WatermarkSpec(maxOutOfOrdernessMs: Int64(rng.next() % 15)),
                    window: window, aggregates: aggregates)
}

/// A partition's text: 0–300 lines, a few keys so windows and sessions collide, times that wander
/// forward with disorder, jumps back (late), and malformed lines of several kinds.
func randomPartition(rng: inout SplitMix64) -> [UInt8] {
    var lines: [String] = []
    var time = Int64(rng.next() % 100) - 50  // negative times too: windows must floor correctly
    let keys = 1 + rng.next() % 4
    for _ in 0..<(rng.next() % 300) {
        time += Int64(rng.next() % 4)
        var t = time
        switch rng.next() % 20 {
        case 0: t -= Int64(rng.next() % 60)   // far back: often late
        case 1, 2: t -= Int64(rng.next() % 8) // a little out of order
        default: break
        }
        let key = rng.next() % keys
        let price = Int64(rng.next() % 1_000) - 10
        switch rng.next() % 60 {
        case 0: lines.append("\(key),1,\(price)")
        case 1: lines.append("\(key),x,\(price),\(t)")
        case 2: lines.append("")
        case 3: lines.append("\(key),1,\(price),\(t),9")
        case 4: lines.append("\(key),1,+\(abs(price) + 1),\(t)")
        case 5: lines.append("\(key),1,\(abs(price) + 1),\(t)\r")
        case 6: lines.append("-\(key),1,\(abs(price) + 1),\(t)")
        case 7: lines.append("18446744073709551616,1,5,\(t)")
        default: lines.append("\(key),\(rng.next() % 5),\(price),\(t)")  // price <= 0 is malformed too
        }
    }
    var text = Array(lines.joined(separator: "\n").utf8)
    if rng.next() % 2 == 0, !lines.isEmpty { text.append(10) }
    return text
}
