import SluiceCore
import SluiceOracle
import SluiceWorkload
import Testing

/// Int64 sums never wrap (docs/DESIGN.md, "Overflow"): an event that would overflow a sum (or the
/// sum behind an avg) of any window it feeds is a dead letter, `overflow: <column> of window
/// <start>`, and is added to none of them. The engine and the oracle are each checked against
/// hand-computed results, and against each other on random workloads with huge values.
@Suite struct OverflowTests {
    static let t0: Int64 = 1_767_225_600_000
    static let max = "9223372036854775807"

    @Test func theIssueExampleNeverWraps() throws {
        let pipeline = bids(.tumbling(sizeMs: 10_000), [AggregateSpec(.count), AggregateSpec(.sum, "price"), AggregateSpec(.avg, "price")])
        let lines = ["1,1,\(Self.max),\(Self.t0)", "1,1,\(Self.max),\(Self.t0 + 1)", "1,1,5,\(Self.t0 + 2)"]
        let expected = Outcome(rows: ["\(Self.t0),1,1,\(Self.max),9.223372036854776e+18"], late: [],
                               dead: [Dead(1, "overflow: sum_price of window \(Self.t0)"),
                                      Dead(2, "overflow: sum_price of window \(Self.t0)")])
        #expect(try engine(pipeline, lines) == expected)
        #expect(oracle(pipeline, lines) == expected)
    }

    @Test func anAverageNamesItsOwnColumn() throws {
        let pipeline = bids(.tumbling(sizeMs: 10_000), [AggregateSpec(.max, "price"), AggregateSpec(.avg, "price")])
        let lines = ["7,1,\(Self.max),\(Self.t0)", "7,1,1,\(Self.t0 + 9_999)"]
        let expected = Outcome(rows: ["\(Self.t0),7,\(Self.max),9.223372036854776e+18"], late: [],
                               dead: [Dead(1, "overflow: avg_price of window \(Self.t0)")])
        #expect(try engine(pipeline, lines) == expected)
        #expect(oracle(pipeline, lines) == expected)
    }

    @Test func negativeSumsOverflowTooAndSumsMayComeBack() throws {
        let pipeline = signed(.tumbling(sizeMs: 100), [AggregateSpec(.count), AggregateSpec(.sum, "v"), AggregateSpec(.min, "v")])
        let lines = [
            "1,-9223372036854775807,0", "1,-1,1",  // Int64.min exactly: fits
            "1,-1,2",                              // below Int64.min: dead
            "1,9223372036854775807,3", "1,5,4",    // back to -1, then 4
            "1,9223372036854775807,5",             // 4 + max: dead
        ]
        let expected = Outcome(rows: ["0,1,4,4,-9223372036854775807"], late: [],
                               dead: [Dead(2, "overflow: sum_v of window 0"), Dead(5, "overflow: sum_v of window 0")])
        #expect(try engine(pipeline, lines) == expected)
        #expect(oracle(pipeline, lines) == expected)
    }

    @Test func slidingIsAllOrNothingAndNamesTheEarliestWindow() throws {
        let t0 = Self.t0
        let pipeline = bids(.sliding(sizeMs: 10_000, slideMs: 5_000),
                            [AggregateSpec(.count), AggregateSpec(.sum, "price"), AggregateSpec(.min, "price")], delay: 100_000)
        let lines = [
            "1,1,\(Self.max),\(t0 + 6_000)",  // 0: windows t0 and t0+5000
            "1,1,1,\(t0 + 7_000)",            // 1: both overflow: names t0
            "1,1,2,\(t0 + 1_000)",            // 2: t0-5000 is new, t0 overflows: neither gets it (no min 2)
            "1,1,7,\(t0 + 12_000)",           // 3: t0+5000 overflows, t0+10000 is new: neither
            "1,1,4,\(t0 + 16_000)",           // 4: t0+10000 and t0+15000, both new
        ]
        let expected = Outcome(rows: ["\(t0),1,1,\(Self.max),\(Self.max)", "\(t0 + 10_000),1,1,4,4",
                                      "\(t0 + 15_000),1,1,4,4", "\(t0 + 5_000),1,1,\(Self.max),\(Self.max)"], late: [],
                               dead: [Dead(1, "overflow: sum_price of window \(t0)"), Dead(2, "overflow: sum_price of window \(t0)"),
                                      Dead(3, "overflow: sum_price of window \(t0 + 5_000)")])
        #expect(try engine(pipeline, lines) == expected)
        #expect(oracle(pipeline, lines) == expected)
    }

    @Test func aSessionMergeThatWouldOverflowLeavesTheSessionsAsTheyWere() throws {
        let t0 = Self.t0
        let pipeline = bids(.session(gapMs: 3_000), [AggregateSpec(.count), AggregateSpec(.sum, "price"), AggregateSpec(.max, "price")],
                            delay: 100_000)
        let lines = [
            "1,1,\(Self.max),\(t0)",          // 0: [t0, t0+3000)
            "1,1,\(Self.max),\(t0 + 5_000)",  // 1: [t0+5000, t0+8000)
            "1,1,1,\(t0 + 2_500)",            // 2: would merge both: dead, named by the merged start
            "1,1,1,\(t0 + 6_000)",            // 3: extends the second: dead
            "1,1,9,\(t0 + 20_000)",           // 4: a session of its own
            "2,1,3,\(t0 + 2_500)",            // 5: another key is unaffected
        ]
        let expected = Outcome(rows: ["\(t0 + 20_000),1,1,9,9", "\(t0 + 2_500),2,1,3,3",
                                      "\(t0 + 5_000),1,1,\(Self.max),\(Self.max)", "\(t0),1,1,\(Self.max),\(Self.max)"], late: [],
                               dead: [Dead(2, "overflow: sum_price of window \(t0)"), Dead(3, "overflow: sum_price of window \(t0 + 5_000)")])
        #expect(try engine(pipeline, lines) == expected)
        #expect(oracle(pipeline, lines) == expected)
    }

    @Test func anOverflowingEventMovesTheWatermark() throws {
        let t0 = Self.t0
        let pipeline = bids(.tumbling(sizeMs: 10_000), [AggregateSpec(.count), AggregateSpec(.sum, "price")], delay: 5_000)
        let lines = [
            "2,1,1,\(t0 - 5_000)",        // 0: key 2, window t0-10000. W = t0-10000
            "1,1,\(Self.max),\(t0)",      // 1: key 1, window t0. W = t0-5000
            "1,1,1,\(t0 + 6_000)",        // 2: overflows window t0; W = t0+1000 fires key 2's window
            "2,1,1,\(t0 - 1)",            // 3: late, because event 2 moved W
        ]
        let expected = Outcome(rows: ["\(t0 - 10_000),2,1,1", "\(t0),1,1,\(Self.max)"], late: [3],
                               dead: [Dead(2, "overflow: sum_price of window \(t0)")])
        #expect(try engine(pipeline, lines) == expected)
        #expect(oracle(pipeline, lines) == expected)
    }

    /// Random partitions whose values are often near ±Int64.max, half/third of it, or small,
    /// over a signed field; the engine snapshots and restores at random points. Rows, late offsets
    /// and dead letters with their reasons must all equal the oracle's.
    @Test(arguments: ["tumbling", "sliding", "session"])
    func hugeValuesMatchTheOracle(kind: String) throws {
        var rng = SplitMix64(seed: 0x0F10_0000 ^ UInt64(kind.utf8.count))
        var overflows = 0, accepted = 0
        for trial in 0..<600 {
            let pipeline = randomSignedPipeline(kind: kind, rng: &rng)
            let lines = hugeValueLines(rng: &rng)
            let expected = oracle(pipeline, lines)
            let actual = try engine(pipeline, lines, rng: &rng)
            #expect(actual == expected, "trial \(trial), \(pipeline.window), \(pipeline.aggregates.map(\.columnName))")
            if actual != expected { return }
            overflows += expected.dead.filter { $0.reason.hasPrefix("overflow: ") }.count
            accepted += expected.rows.count
        }
        // Not vacuous: the workloads overflow often, and still produce rows.
        #expect(overflows > 500)
        #expect(accepted > 500)
    }
}

// MARK: - Helpers

struct Dead: Equatable, Comparable, CustomStringConvertible {
    var offset: Int
    var reason: String
    init(_ offset: Int, _ reason: String) { self.offset = offset; self.reason = reason }
    static func < (a: Dead, b: Dead) -> Bool { (a.offset, a.reason) < (b.offset, b.reason) }
    var description: String { "\(offset): \(reason)" }
}

/// A partition's result in one canonical form: rows sorted as strings, late and dead sorted by offset.
struct Outcome: Equatable {
    var rows: [String]
    var late: [Int]
    var dead: [Dead]
    init(rows: [String], late: [Int], dead: [Dead]) {
        self.rows = rows.sorted()
        self.late = late.sorted()
        self.dead = dead.sorted()
    }
}

private func bids(_ window: WindowSpec, _ aggregates: [AggregateSpec], delay: Int64 = 2_000) -> Pipeline {
    Pipeline(schema: .bids, keyField: "auction", timeField: "event_time_ms",
             watermark: WatermarkSpec(maxOutOfOrdernessMs: delay), window: window, aggregates: aggregates)
}

/// `k,v,t` with a signed `v` that has no minimum.
private func signed(_ window: WindowSpec, _ aggregates: [AggregateSpec], delay: Int64 = 0) -> Pipeline {
    let schema = Schema(fields: [Field(name: "k", type: .uint64), Field(name: "v", type: .int64), Field(name: "t", type: .int64)])
    return Pipeline(schema: schema, keyField: "k", timeField: "t", watermark: WatermarkSpec(maxOutOfOrdernessMs: delay),
                    window: window, aggregates: aggregates)
}

private func oracle(_ pipeline: Pipeline, _ lines: [String]) -> Outcome {
    let result = Oracle.run(pipeline: pipeline, partition: 0, text: Array(lines.map { $0 + "\n" }.joined().utf8))
    return Outcome(rows: result.rows, late: result.late.map(\.offset),
                   dead: result.deadLetters.map { Dead($0.offset, $0.reason) }.sorted())
}

/// The engine over the lines in one block.
private func engine(_ pipeline: Pipeline, _ lines: [String]) throws -> Outcome {
    var rng = SplitMix64(seed: 0)
    return try engine(pipeline, lines, rng: &rng, blocks: false)
}

/// The engine over the lines in random blocks of 1–8 lines, snapshotting and restoring into a
/// fresh processor after about one block in four (`blocks`: false for one block, no snapshot).
private func engine(_ pipeline: Pipeline, _ lines: [String], rng: inout SplitMix64, blocks: Bool = true) throws -> Outcome {
    var processor = PartitionProcessor(partition: 0, pipeline: pipeline)
    let formatter = RowFormatter(layout: processor.layout)
    var outcome = Outcome(rows: [], late: [], dead: [])
    func collect(_ output: PartitionOutput) {
        for row in 0..<output.rows.count { outcome.rows.append(formatter.text(output.rows, row: row)) }
        outcome.late += output.late.map { Int($0.offset) }
        outcome.dead += output.deadLetters.map { Dead(Int($0.offset), $0.reason) }
    }
    var next = 0
    while next < lines.count {
        let count = blocks ? Int(1 + rng.next() % 8) : lines.count
        let block = Array(lines[next..<min(lines.count, next + count)].map { $0 + "\n" }.joined().utf8)
        next += count
        block.withUnsafeBytes { _ = processor.process($0) }
        if blocks, rng.next() % 4 == 0 {
            collect(processor.takeOutput())
            let snapshot = try processor.snapshot()
            processor = PartitionProcessor(partition: 0, pipeline: pipeline)
            try processor.restore(snapshot)
        }
    }
    processor.finish()
    collect(processor.takeOutput())
    outcome.rows.sort()
    outcome.late.sort()
    outcome.dead.sort()
    return outcome
}

private func randomSignedPipeline(kind: String, rng: inout SplitMix64) -> Pipeline {
    let window: WindowSpec
    switch kind {
    case "tumbling": window = .tumbling(sizeMs: Int64(1 + rng.next() % 30))
    case "sliding":
        let slide = Int64(1 + rng.next() % 8)
        window = .sliding(sizeMs: slide * Int64(1 + rng.next() % 5), slideMs: slide)
    default: window = .session(gapMs: Int64(1 + rng.next() % 12))  // job specs require a positive gap
    }
    let all: [AggregateSpec] = [AggregateSpec(.count), AggregateSpec(.sum, "v"), AggregateSpec(.min, "v"),
                                AggregateSpec(.max, "v"), AggregateSpec(.avg, "v"), AggregateSpec(.sum, "t")]
    var aggregates = all.filter { _ in rng.next() % 2 == 0 }
    if !aggregates.contains(where: { $0.function == .sum || $0.function == .avg }) {
        aggregates.append(rng.next() % 2 == 0 ? AggregateSpec(.sum, "v") : AggregateSpec(.avg, "v"))
    }
    // Any order of the columns: the reason names the first overflowing one in spec order.
    for i in stride(from: aggregates.count - 1, to: 0, by: -1) { aggregates.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
    return signed(window, aggregates, delay: Int64(rng.next() % 10))
}

/// 0–120 lines over 1–3 keys, times wandering forward with some disorder and jumps back, values
/// mostly huge (positive or negative), a few malformed lines.
private func hugeValueLines(rng: inout SplitMix64) -> [String] {
    var lines: [String] = []
    var time = Int64(rng.next() % 40) - 20
    let keys = 1 + rng.next() % 3
    for _ in 0..<(rng.next() % 120) {
        time += Int64(rng.next() % 3)
        let t = rng.next() % 10 == 0 ? time - Int64(rng.next() % 30) : time
        let small = Int64(rng.next() % 200) - 100
        let value: Int64
        switch rng.next() % 8 {
        case 0: value = Int64.max - Int64(rng.next() % 4)
        case 1: value = Int64.min + Int64(rng.next() % 4)
        case 2: value = Int64.max / 2 + small
        case 3: value = Int64.min / 2 + small
        case 4: value = Int64.max / 3 + small
        default: value = small
        }
        lines.append(rng.next() % 40 == 0 ? "\(rng.next() % keys),x,\(t)" : "\(rng.next() % keys),\(value),\(t)")
    }
    return lines
}
