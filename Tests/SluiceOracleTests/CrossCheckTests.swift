// The oracle against an even more naive reference written here: every open window in one flat
// list, rescanned in full after every event, aggregates computed from the list of an window's
// values only when it fires. Quadratic, so only on small generated inputs (with late,
// out-of-order and malformed lines) and small inputs made to stress lateness.

import Testing
import SluiceCore
import SluiceWorkload
@testable import SluiceOracle

/// The reference: no dictionaries, no queues, no running aggregates.
private func naive(pipeline: Pipeline, partition: Int, text: [UInt8]) -> OracleResult {
    struct Window { var start: Int128; var end: Int128; var key: UInt64; var events: [[Int64]] }
    var open: [Window] = []
    var result = OracleResult()
    var watermark: Int128? = nil  // nil: minus infinity
    let schema = pipeline.schema
    let keyIndex = schema.index(of: pipeline.keyField)!, timeIndex = schema.index(of: pipeline.timeField)!

    func row(_ w: Window) -> String {
        var columns = ["\(w.start)", "\(w.key)"]
        for spec in pipeline.aggregates {
            let values = w.events.map { $0[spec.field.flatMap(schema.index(of:)) ?? 0] }
            let sum = values.reduce(Int64(0), &+)
            switch spec.function {
            case .count: columns.append("\(values.count)")
            case .sum: columns.append("\(sum)")
            case .min: columns.append("\(values.min()!)")
            case .max: columns.append("\(values.max()!)")
            case .avg: columns.append("\(Double(sum) / Double(values.count))")
            case .countDistinct, .first, .last: Issue.record("the cross-check covers the integer aggregates only")
            }
        }
        return columns.joined(separator: ",")
    }
    func fire(upTo w: Int128) {
        for window in open where window.end <= w { result.rows.append(row(window)) }
        open.removeAll { $0.end <= w }
    }
    func isAfterWatermark(_ end: Int128) -> Bool { watermark.map { end > $0 } ?? true }

    // Lines through String splitting, fields through Int64(_:) / UInt64(_:): a different parser.
    var lines = String(decoding: text, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    if lines.last == "" { lines.removeLast() }
    for (offset, line) in lines.enumerated() {
        let parts = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        var reason: String? = nil
        var fields: [Int64] = []
        if parts.count != schema.fields.count {
            reason = "expected \(schema.fields.count) fields, got \(parts.count)"
        } else {
            for (field, part) in zip(schema.fields, parts) {
                let digits = field.type == .int64 && part.hasPrefix("-") ? String(part.dropFirst()) : part
                let plain = !digits.isEmpty && digits.allSatisfy { $0 >= "0" && $0 <= "9" }
                let value: Int64? = !plain ? nil : field.type == .int64 ? Int64(part) : UInt64(part).map { Int64(bitPattern: $0) }
                guard let value else { reason = "field '\(field.name)' is not an integer"; break }
                if let minimum = field.minimum, value < minimum { reason = "field '\(field.name)' must be >= \(minimum)"; break }
                fields.append(value)
            }
        }
        if let reason {
            result.deadLetters.append(DeadLetter(partition: partition, offset: offset, reason: reason))
            continue
        }
        let key = UInt64(bitPattern: fields[keyIndex]), t = Int128(fields[timeIndex])
        var accepted = false
        switch pipeline.window {
        case .tumbling(let size), .sliding(let size, _):
            var slide = Int128(size)
            if case .sliding(_, let s) = pipeline.window { slide = Int128(s) }
            // Every multiple of slide in (t - size, t], found by walking from far below.
            var start = (t - Int128(size)) - ((t - Int128(size)) % slide + slide) % slide
            while start <= t {
                if start + Int128(size) > t && isAfterWatermark(start + Int128(size)) {
                    if let i = open.firstIndex(where: { $0.start == start && $0.key == key }) {
                        open[i].events.append(fields)
                    } else {
                        open.append(Window(start: start, end: start + Int128(size), key: key, events: [fields]))
                    }
                    accepted = true
                }
                start += slide
            }
        case .session(let gap):
            var merged = Window(start: t, end: t + Int128(gap), key: key, events: [fields])
            let touching = open.filter { $0.key == key && merged.start <= $0.end && merged.end >= $0.start }
            for other in touching {
                merged.start = min(merged.start, other.start)
                merged.end = max(merged.end, other.end)
                merged.events += other.events
            }
            if isAfterWatermark(merged.end) {
                open.removeAll { w in touching.contains { $0.key == w.key && $0.start == w.start } }
                open.append(merged)
                accepted = true
            }
        }
        if !accepted { result.late.append(PartitionOffset(partition: partition, offset: offset)) }
        let candidate = t - Int128(pipeline.watermark.maxOutOfOrdernessMs)
        watermark = max(watermark ?? candidate, candidate)
        fire(upTo: watermark!)
    }
    fire(upTo: .max)
    result.sort()
    return result
}

/// Equal results; on a difference, shows only the differing rows and positions.
private func expectSame(_ actual: OracleResult, _ expected: OracleResult,
                        sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(actual.rows.count == expected.rows.count, sourceLocation: sourceLocation)
    #expect(Set(actual.rows).symmetricDifference(expected.rows).sorted() == [], sourceLocation: sourceLocation)
    #expect(Set(actual.late).symmetricDifference(expected.late).sorted() == [], sourceLocation: sourceLocation)
    #expect(actual.deadLetters.count == expected.deadLetters.count, sourceLocation: sourceLocation)
    #expect(Set(actual.deadLetters).symmetricDifference(expected.deadLetters).map(\.offset).sorted() == [],
            sourceLocation: sourceLocation)
    let same = actual == expected
    #expect(same, "results differ", sourceLocation: sourceLocation)
}

@Suite struct CrossCheckTests {
    static let windows: [WindowSpec] = [
        .tumbling(sizeMs: 10_000), .tumbling(sizeMs: 1_000), .sliding(sizeMs: 10_000, slideMs: 2_000),
        .sliding(sizeMs: 3_000, slideMs: 1_000), .session(gapMs: 5_000), .session(gapMs: 300),
    ]
    static let aggregates = [
        AggregateSpec(.count), AggregateSpec(.sum, "price"), AggregateSpec(.min, "price"),
        AggregateSpec(.max, "price"), AggregateSpec(.avg, "price"), AggregateSpec(.max, "event_time_ms"),
    ]

    @Test(arguments: windows) func generatedInput(window: WindowSpec) throws {
        // 40 keys, 4 partitions, about 8 s of event time: windows open and fire all along.
        let input = try WorkloadInput.parse("gen:seed=11,events=80000,partitions=4,keys=40")
        let pipeline = bidsPipeline(window, Self.aggregates)
        for p in 0..<2 {
            let text = Array(try input.readPartition(p).prefix(200_000))  // about 5000 lines
            let actual = Oracle.run(pipeline: pipeline, partition: p, text: text)
            expectSame(actual, naive(pipeline: pipeline, partition: p, text: text))
            #expect(!actual.rows.isEmpty)
        }
    }

    @Test(arguments: windows) func scrambledTimes(window: WindowSpec) {
        // Few keys, times jumping back and forth by up to 15 s: many late, partly late and merging events.
        var rng = SplitMix64(seed: 99)
        var lines: [String] = []
        var base: Int64 = -20_000
        for i in 0..<1500 {
            base += Int64(rng.next() % 40)
            // Multiples of 50 ms, so that ends often equal the watermark exactly.
            let time = (base - Int64(rng.next() % 15_000) + 1_000) / 50 * 50
            lines.append(i % 97 == 5 ? "1,2,x,3" : "\(rng.next() % 4),1,\(1 + rng.next() % 50),\(time)")
        }
        let pipeline = bidsPipeline(window, Self.aggregates)
        let bytes = text(lines)
        let actual = Oracle.run(pipeline: pipeline, partition: 2, text: bytes)
        expectSame(actual, naive(pipeline: pipeline, partition: 2, text: bytes))
        #expect(!actual.late.isEmpty)
        #expect(!actual.rows.isEmpty)
    }
}
