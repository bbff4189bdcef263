import SluiceCore
import SluiceOracle
import SluiceWorkload
import Testing

/// The records engine against the independent oracle on random typed jobs and inputs: JSON and
/// CSV (header or not, another delimiter), unicode and escapes, nulls, nested paths, bad lines,
/// composite keys, the partition check, filters and derived fields (with runtime errors),
/// dedupe, every aggregate, the three window kinds, random block cuts and snapshots restored into
/// a fresh processor. Rows must match as multisets, late, dead-letter and duplicate offsets as sets.
@Suite struct RecordsVersusOracleTests {
    @Test(arguments: ["tumbling", "sliding", "session"])
    func randomRecordJobsMatchTheOracle(kind: String) throws {
        var rng = SplitMix64(seed: 0x2EC0_0000 ^ UInt64(kind.utf8.count))
        var compared = 0
        for trial in 0..<300 {
            let job = RandomRecordJob(kind: kind, rng: &rng)
            let text = job.input(rng: &rng)
            let expected = Oracle.run(pipeline: job.pipeline, partition: job.partition, text: text, partitions: job.partitions)
            let actual = try runRecordEngine(job, text: text, rng: &rng)
            let context = "trial \(trial): \(job.pipeline.fingerprint)"
            // By UTF-8 bytes: Swift's String == would equate a precomposed é with e + U+0301.
            let expectedRows = expected.rows.map { Array($0.utf8) }.sorted { $0.lexicographicallyPrecedes($1) }
            #expect(actual.rows == expectedRows, "\(context): rows differ")
            #expect(actual.late == expected.late.map(\.offset), "\(context): late offsets differ")
            #expect(actual.dead == expected.deadLetters.map(\.offset), "\(context): dead-letter offsets differ")
            #expect(actual.duplicates == expected.duplicates.map(\.offset), "\(context): duplicate offsets differ")
            if actual.rows != expectedRows || actual.dead != expected.deadLetters.map(\.offset) { return }
            compared += actual.rows.count
        }
        #expect(compared > 300, "the random jobs should produce rows")
    }
}

struct RecordEngineResult {
    /// `RecordText.row` of every row, as UTF-8 bytes, sorted.
    var rows: [[UInt8]] = []
    var late: [Int] = []
    var dead: [Int] = []
    var duplicates: [Int] = []
}

/// Runs the records engine over `text` in random blocks of whole lines (a quoted CSV record may
/// span two), snapshotting and restoring into a new processor at random block boundaries.
func runRecordEngine(_ job: RandomRecordJob, text: [UInt8], rng: inout SplitMix64) throws -> RecordEngineResult {
    func fresh() -> RecordProcessor { RecordProcessor(partition: job.partition, partitions: job.partitions, pipeline: job.pipeline) }
    var processor = fresh()
    var result = RecordEngineResult()
    func collect(_ output: PartitionOutput) {
        result.rows += output.records.map { Array(RecordText.row($0).utf8) }
        result.late += output.late.map { Int($0.offset) }
        result.dead += output.deadLetters.map { Int($0.offset) }
        result.duplicates += output.duplicates.map { Int($0.offset) }
    }
    let lineEnds = text.indices.filter { text[$0] == 10 }
    var start = 0, endIndex = 0
    while start < text.count {
        endIndex += Int(rng.next() % 12)
        let cut = endIndex < lineEnds.count ? lineEnds[endIndex] + 1 : text.count
        endIndex += 1
        text[start..<cut].withUnsafeBytes { _ = processor.process($0) }
        start = cut
        if rng.next() % 6 == 0 {
            collect(processor.takeOutput())
            let snapshot = try processor.snapshot()
            processor = fresh()
            try processor.restore(snapshot)
        }
    }
    processor.finish()
    collect(processor.takeOutput())
    result.rows.sort { $0.lexicographicallyPrecedes($1) }
    result.late.sort()
    result.dead.sort()
    result.duplicates.sort()
    return result
}

/// A random typed job and its input's shape.
struct RandomRecordJob {
    let pipeline: Pipeline
    let partition: Int
    let partitions: Int
    let json: Bool
    let header: Bool
    let delimiter: UInt8
    let nested: Bool
    let compositeKey: Bool
    let timestampTime: Bool

    /// Key values: unicode (a precomposed é and e + combining accent are different keys), a comma,
    /// a quote, an empty string.
    static let names = ["é", "e\u{301}", "a,b", "q\"t", "", "日本", "plain", "x\\y", "tab\there"]
    static let statuses = ["paid", "new", "Paid", "refunded"]

    init(kind: String, rng: inout SplitMix64) {
        json = rng.next() % 2 == 0
        header = !json && rng.next() % 2 == 0
        delimiter = !json && rng.next() % 3 == 0 ? UInt8(ascii: ";") : UInt8(ascii: ",")
        nested = json && rng.next() % 2 == 0
        compositeKey = rng.next() % 3 == 0
        timestampTime = rng.next() % 2 == 0
        partitions = 1 + Int(rng.next() % 3)
        partition = Int(rng.next() % UInt64(partitions))
        let scale = Int(rng.next() % 4)
        let fields = [
            Field(name: "name", type: .string, path: nested ? ["who", "name"] : nil),
            Field(name: "n", type: .int64),
            Field(name: "t", type: timestampTime ? .timestamp : .int64),
            Field(name: "v", type: .int64, nullable: true),
            Field(name: "d", type: .decimal, scale: scale, nullable: true, path: nested ? ["money", "d"] : nil),
            Field(name: "f", type: .float64, nullable: true),
            Field(name: "s", type: .string, nullable: true),
            Field(name: "b", type: .bool, nullable: true),
        ]
        let window: WindowSpec
        switch kind {
        case "sliding":
            let slide = Int64(2 + rng.next() % 20)
            window = .sliding(sizeMs: slide * Int64(1 + rng.next() % 4), slideMs: slide)
        case "session": window = .session(gapMs: Int64(1 + rng.next() % 30))
        default: window = .tumbling(sizeMs: Int64(5 + rng.next() % 60))
        }
        let filters: [String?] = [nil, nil, "v > 10 or v is null", "s is not null and length(s) > 2", "b or d >= 1.5",
                                  "100 / (n % 4) > 30", "lower(s) in ('paid', 'new')", "not starts_with(coalesce(s, ''), 're')"]
        let derives: [[DerivedField]] = [[], [], [DerivedField(name: "x", expression: "coalesce(v, 0) * 2 + n")],
                                         [DerivedField(name: "x", expression: "n * 1000 / (n % 5)")],
                                         [DerivedField(name: "x", expression: "round(coalesce(d, 0.5) * 3, 1)")]]
        let derive = derives[Int(rng.next() % UInt64(derives.count))]
        var pool: [AggregateSpec] = [
            AggregateSpec(.sum, "v"), AggregateSpec(.avg, "v"), AggregateSpec(.min, "v"), AggregateSpec(.max, "n"),
            AggregateSpec(.sum, "d"), AggregateSpec(.avg, "d"), AggregateSpec(.max, "d"),
            AggregateSpec(.sum, "f"), AggregateSpec(.avg, "f"), AggregateSpec(.min, "f"),
            AggregateSpec(.min, "s"), AggregateSpec(.max, "s"), AggregateSpec(.countDistinct, "s"),
            AggregateSpec(.first, "s"), AggregateSpec(.last, "b"), AggregateSpec(.first, "d"), AggregateSpec(.min, "t"),
            AggregateSpec(.countDistinct, "name"),
        ]
        if !derive.isEmpty { pool.append(AggregateSpec(.sum, "x")); pool.append(AggregateSpec(.last, "x")) }
        var aggregates = [AggregateSpec(.count)]
        for spec in pool where rng.next() % 4 == 0 { aggregates.append(spec) }
        let dedupes: [DedupeSpec?] = [nil, DedupeSpec(field: "s", withinMs: Int64(rng.next() % 40)),
                                      DedupeSpec(field: "v", withinMs: Int64(rng.next() % 15)), DedupeSpec(field: "name", withinMs: 0)]
        pipeline = Pipeline(
            schema: Schema(fields: fields), keyFields: compositeKey ? ["name", "n"] : ["name"], timeField: "t",
            watermark: WatermarkSpec(maxOutOfOrdernessMs: Int64(rng.next() % 20)), window: window, aggregates: aggregates,
            format: json ? .json : .csv(header: header, delimiter: delimiter),
            partitioner: .murmur2, partitionCheck: rng.next() % 3 == 0, filter: filters[Int(rng.next() % UInt64(filters.count))],
            derive: derive, dedupe: dedupes[Int(rng.next() % UInt64(dedupes.count))])
    }

    /// About 150 events around t = 1000 with disorder, some late, some malformed.
    func input(rng: inout SplitMix64) -> [UInt8] {
        var lines: [String] = []
        if header { lines.append(["s", "t", "name", "b", "n", "v", "d", "f"].joined(separator: String(UnicodeScalar(delimiter)))) }
        var time: Int64 = 1_000
        let count = 60 + Int(rng.next() % 150)
        for _ in 0..<count {
            time += Int64(rng.next() % 4)
            var t = time
            if rng.next() % 10 == 0 { t -= Int64(rng.next() % 60) }  // out of order, sometimes late
            let roll = rng.next() % 40
            if roll == 0 { lines.append(malformed(rng: &rng, time: t)); continue }
            lines.append(event(rng: &rng, time: t, broken: roll == 1))
        }
        var text = lines.joined(separator: "\n")
        if rng.next() % 4 != 0 { text += "\n" }
        return Array(text.utf8)
    }

    private func pick<T>(_ items: [T], _ rng: inout SplitMix64) -> T { items[Int(rng.next() % UInt64(items.count))] }

    private func event(rng: inout SplitMix64, time: Int64, broken: Bool) -> String {
        let name = pick(Self.names, &rng)
        let n = Int64(rng.next() % 7) - 1
        let v: Int64? = rng.next() % 5 == 0 ? nil : Int64(rng.next() % 30) - 5
        let scale = pipeline.schema.fields[4].scale
        var d: String? = nil
        if rng.next() % 5 != 0 {
            let unscaled = Int64(rng.next() % 2_000) - 300
            d = DecimalText.format(unscaled, scale: scale)
            if broken { d = DecimalText.format(unscaled, scale: scale + 1) + "7" }  // too precise: a dead letter
        }
        // Quarters: float sums are exact in any order, so engine and oracle agree to the bit.
        let f: Double? = rng.next() % 5 == 0 ? nil : Double(Int64(rng.next() % 80) - 20) / 4
        let s: String? = rng.next() % 6 == 0 ? nil : pick(Self.statuses + ["line\nbreak", "émoji 🎉", ""], &rng)
        let b: Bool? = rng.next() % 4 == 0 ? nil : rng.next() % 2 == 0
        let t: String
        if timestampTime {
            t = rng.next() % 3 == 0 ? String(time) : rfc3339(time, offsetMinutes: Int(rng.next() % 3) * 90 - 90)
        } else {
            t = String(time)
        }
        if json {
            func q(_ s: String) -> String { JSONValue.quote(s) }
            var members: [String] = []
            let nameMember = nested ? "\"who\":{\"name\":\(q(name)),\"extra\":[1,{\"z\":null}]}" : "\"name\":\(q(name))"
            members.append(nameMember)
            members.append("\"n\":\(n)")
            members.append("\"t\":" + (timestampTime && t.contains("T") ? q(t) : t))
            if let v { members.append("\"v\":\(v)") } else if rng.next() % 2 == 0 { members.append("\"v\":null") }
            let dText = d.map { rng.next() % 3 == 0 ? q($0) : $0 } ?? "null"
            members.append(nested ? "\"money\":{\"d\":\(dText)}" : "\"d\":\(dText)")
            if let f { members.append("\"f\":\(f)") }
            if let s { members.append("\"s\":\(q(s))") }
            if let b { members.append("\"b\":\(b)") }
            if broken, rng.next() % 2 == 0 { members.append("\"n\":3") }  // a duplicated key: a dead letter
            members.shuffle(using: &rng)
            return "{" + members.joined(separator: rng.next() % 2 == 0 ? "," : " , ") + "}"
        }
        func c(_ text: String?, quoteAlways: Bool = false) -> String {
            guard let text else { return "" }
            let delim = Character(UnicodeScalar(delimiter))
            if text.isEmpty || quoteAlways || text.contains(delim) || text.contains("\"") || text.contains("\n") {
                return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
            }
            return text
        }
        let values: [String: String] = [
            "name": c(name), "n": String(n), "t": c(t), "v": v.map(String.init) ?? "", "d": c(d), "f": f.map { "\($0)" } ?? "",
            "s": c(s), "b": b.map { "\($0)" } ?? "",
        ]
        let order = header ? ["s", "t", "name", "b", "n", "v", "d", "f"] : pipeline.schema.fields.map(\.name)
        return order.map { values[$0] ?? "" }.joined(separator: String(UnicodeScalar(delimiter)))
    }

    private func malformed(rng: inout SplitMix64, time: Int64) -> String {
        pick(["", "{", "{\"name\":\"x\",\"n\":1.5,\"t\":\(time)}", "not,enough", "\"unclosed,\(time)",
              json ? "[1,2]" : "a,b,c,d,e,f,g,h,i,j", "{\"name\":null,\"n\":1,\"t\":\(time)}",
              "{\"name\":\"x\",\"n\":\"1\",\"t\":\(time)}", "{\"name\":\"x\",\"n\":1,\"t\":\(time),\"f\":1e999}"], &rng)
    }

    private func rfc3339(_ ms: Int64, offsetMinutes: Int) -> String {
        // The same instant written in another zone: local = UTC + offset.
        let local = Timestamps.rfc3339(milliseconds: ms + Int64(offsetMinutes) * 60_000)
        guard offsetMinutes != 0 else { return local }
        let sign = offsetMinutes < 0 ? "-" : "+"
        let m = abs(offsetMinutes)
        return String(local.dropLast()) + sign + String(format2: m / 60) + ":" + String(format2: m % 60)
    }
}

extension String {
    init(format2 v: Int) { self = v < 10 ? "0\(v)" : "\(v)" }
}
