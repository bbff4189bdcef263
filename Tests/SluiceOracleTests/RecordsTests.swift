// Hand-computed examples for the records oracle (issue 12's contract). Every expected row, dead
// letter, late event and duplicate is worked out in the comments, never by running the oracle.

import Foundation
import Testing
import SluiceCore
import SluiceWorkload
@testable import SluiceOracle

/// A records pipeline: JSON unless said otherwise, tumbling 10 s, no out-of-orderness, no
/// partition check (the partition tests turn it on).
func recordsPipeline(_ fields: [Field], keys: [String] = ["k"], time: String = "t",
                     window: WindowSpec = .tumbling(sizeMs: 10_000), delay: Int64 = 0,
                     _ aggregates: [AggregateSpec], format: RecordFormat = .json, partitioner: Partitioner? = nil,
                     partitionCheck: Bool = false, filter: String? = nil, derive: [DerivedField] = [],
                     dedupe: DedupeSpec? = nil) -> Pipeline {
    Pipeline(schema: Schema(fields: fields), keyFields: keys, timeField: time,
             watermark: WatermarkSpec(maxOutOfOrdernessMs: delay), window: window, aggregates: aggregates,
             format: format, partitioner: partitioner, partitionCheck: partitionCheck, filter: filter,
             derive: derive, dedupe: dedupe)
}

func dead(_ result: OracleResult) -> [Int] { result.deadLetters.map(\.offset) }

@Suite struct RecordAggregateTests {
    @Test func sqlNullRules() {
        let pipeline = recordsPipeline(
            [Field(name: "k", type: .string), Field(name: "t", type: .int64), Field(name: "v", type: .int64, nullable: true)],
            [AggregateSpec(.count), AggregateSpec(.sum, "v"), AggregateSpec(.avg, "v"), AggregateSpec(.min, "v"),
             AggregateSpec(.max, "v"), AggregateSpec(.countDistinct, "v"), AggregateSpec(.first, "v"), AggregateSpec(.last, "v")])
        #expect(!pipeline.isIntegerCSV)
        let result = Oracle.run(pipeline: pipeline, partition: 0, text: text([
            #"{"k":"a","t":1000,"v":null}"#,
            #"{"k":"a","t":2000}"#,             // missing: null
            #"{"k":"a","t":3000,"v":5}"#,
            #"{"k":"a","t":4000,"v":null}"#,
            #"{"k":"a","t":2500,"v":7}"#,       // W 4000 < end 10000: not late
            #"{"k":"b","t":1500,"v":null}"#,
        ]))
        // a: count 5 (nulls counted); non-null 5 and 7: sum 12, avg 12/2 = 6.0, min 5, max 7,
        // 2 distinct; first = least time non-null (t 2500: 7), last = greatest (t 3000: 5).
        // b: only a null: every aggregate but count and count_distinct is NULL (empty field).
        #expect(result.rows == ["0,a,5,12,6.0,5,7,2,7,5", "0,b,1,,,,,0,,"])
        #expect(result.records[1].row == RecordRow(windowStart: 0, values: [.string("b"), .int64(1), .null, .null, .null, .null, .int64(0), .null, .null]))
        // avg over int64 is float64: its tolerance basis is |5| + |7|; other columns have none.
        #expect(result.records[0].floatBasis == [nil, nil, nil, 12.0, nil, nil, nil, nil, nil])
        #expect(result.deadLetters.isEmpty && result.late.isEmpty)
    }

    @Test func firstAndLastTiesGoByOffset() {
        let pipeline = recordsPipeline(
            [Field(name: "k", type: .string), Field(name: "t", type: .timestamp), Field(name: "s", type: .string, nullable: true)],
            [AggregateSpec(.first, "s"), AggregateSpec(.last, "s"), AggregateSpec(.min, "t"), AggregateSpec(.max, "s")])
        let result = Oracle.run(pipeline: pipeline, partition: 0, text: text([
            #"{"k":"a","t":1000,"s":"x"}"#,   // 0
            #"{"k":"a","t":1000,"s":"y"}"#,   // 1
            #"{"k":"a","t":1000,"s":null}"#,  // 2: null, skipped
            #"{"k":"a","t":"1970-01-01T00:00:01.000Z","s":"w"}"#,  // 3: t 1000 too, as RFC 3339
        ]))
        // All at t = 1000: first takes the smallest offset (0: x), last the largest non-null (3: w).
        // min t = 1000 ms as RFC 3339; max s by bytes: y.
        #expect(result.rows == ["0,a,x,w,1970-01-01T00:00:01.000Z,y"])
    }

    @Test func avgOfDecimalIsExactAtScalePlusFourHalfEven() {
        let pipeline = recordsPipeline(
            [Field(name: "k", type: .string), Field(name: "t", type: .int64), Field(name: "amount", type: .decimal, scale: 2)],
            [AggregateSpec(.count), AggregateSpec(.sum, "amount"), AggregateSpec(.avg, "amount")])
        var lines: [String] = []
        // a, b, c: 32 events each, all 0.00 but one (0.01, 0.03, -0.01). avg = S × 10^4 / 32 at
        // scale 6: 10000/32 = 312.5 → 312 (even); 30000/32 = 937.5 → 938 (even); -312.5 → -312.
        for (key, odd) in [("a", "0.01"), ("b", "0.03"), ("c", "-0.01")] {
            lines.append(#"{"k":"\#(key)","t":1,"amount":\#(odd)}"#)
            for _ in 0..<31 { lines.append(#"{"k":"\#(key)","t":1,"amount":"0.00"}"#) }
        }
        // d: 0.01 + 0.02 + 0.02 = 0.05, / 3 = 0.0166666… → 0.016667 (not a tie: nearest).
        lines += [#"{"k":"d","t":1,"amount":0.01}"#, #"{"k":"d","t":1,"amount":"0.02"}"#, #"{"k":"d","t":1,"amount":2e-2}"#]
        let result = Oracle.run(pipeline: pipeline, partition: 0, text: text(lines))
        #expect(result.rows == ["0,a,32,0.01,0.000312", "0,b,32,0.03,0.000938", "0,c,32,-0.01,-0.000312", "0,d,3,0.05,0.016667"])
        #expect(result.records[3].row.values[3] == .decimal(16667, scale: 6))  // key, count, sum, avg
    }

    @Test func stringsAreBytesNotCanonicalEquivalence() {
        let pipeline = recordsPipeline(
            [Field(name: "k", type: .string), Field(name: "t", type: .int64), Field(name: "s", type: .string)],
            [AggregateSpec(.count), AggregateSpec(.countDistinct, "s"), AggregateSpec(.min, "s"), AggregateSpec(.max, "s")])
        // "é" precomposed (C3 A9) and "e" + combining acute (65 CC 81): canonically equivalent,
        // byte-different. As values: 2 distinct; min is the decomposed one (0x65 < 0xC3). As keys:
        // two keys, two rows.
        let result = Oracle.run(pipeline: pipeline, partition: 0, text: text([
            #"{"k":"x","t":1,"s":"\u00e9"}"#,
            #"{"k":"x","t":2,"s":"e\u0301"}"#,
            #"{"k":"x","t":3,"s":"\u00E9"}"#,
            #"{"k":"\u00e9","t":4,"s":"a"}"#,
            #"{"k":"e\u0301","t":5,"s":"a"}"#,
        ]))
        #expect(result.records.count == 3)
        let x = result.records.first { $0.row.values[0] == .string("x") }
        #expect(x?.row.values == [.string("x"), .int64(3), .int64(2), .string("e\u{301}"), .string("\u{e9}")])
        let keys = result.records.map { Array(RecordText.text($0.row.values[0]).utf8) }
        #expect(keys.contains([0xC3, 0xA9]) && keys.contains([0x65, 0xCC, 0x81]))
    }

    @Test func floatSumAndItsToleranceBasis() {
        let pipeline = recordsPipeline(
            [Field(name: "k", type: .string), Field(name: "t", type: .int64), Field(name: "f", type: .float64)],
            [AggregateSpec(.sum, "f"), AggregateSpec(.avg, "f")])
        let result = Oracle.run(pipeline: pipeline, partition: 0, text: text([
            #"{"k":"a","t":1,"f":0.1}"#, #"{"k":"a","t":2,"f":0.2}"#, #"{"k":"a","t":3,"f":-0.3}"#,
            #"{"k":"a","t":4,"f":1e999}"#,  // infinite: dead letter
        ]))
        // Summed in offset order: (0.1 + 0.2) + -0.3; avg that / 3; basis |0.1| + |0.2| + |0.3|.
        let sum = (0.1 + 0.2) + -0.3
        #expect(result.records.first?.row.values == [.string("a"), .float64(sum), .float64(sum / 3)])
        let basis = result.records.first?.floatBasis ?? []
        #expect(basis.count == 3 && basis[0] == nil)
        #expect(abs((basis[1] ?? 0) - 0.6) < 1e-12 && abs((basis[2] ?? 0) - 0.6) < 1e-12)
        #expect(dead(result) == [3])
    }

    @Test func overflowIsADeadLetterThatChangesNothing() {
        let pipeline = recordsPipeline(
            [Field(name: "k", type: .string), Field(name: "t", type: .int64), Field(name: "v", type: .int64)],
            window: .sliding(sizeMs: 20_000, slideMs: 10_000),
            [AggregateSpec(.count), AggregateSpec(.max, "v"), AggregateSpec(.sum, "v")])
        let result = Oracle.run(pipeline: pipeline, partition: 0, text: text([
            #"{"k":"a","t":15000,"v":9223372036854775807}"#,  // windows 0 and 10000
            #"{"k":"a","t":25000,"v":1}"#,                    // windows 10000 (would overflow) and 20000: dead letter
            #"{"k":"a","t":26000,"v":-5}"#,                   // 2: windows 10000 and 20000 (0 fired at W 25000)
        ]))
        // Offset 1: window 0 [0, 20000) is not among its windows; 10000 holds Int64.max: +1
        // overflows: "overflow: sum_v of window 10000"; window 20000 gets nothing either.
        #expect(result.deadLetters == [DeadLetter(partition: 0, offset: 1, reason: "overflow: sum_v of window 10000")])
        // 0: {15000}; 10000: {15000, 26000}; 20000: {26000}.
        #expect(result.rows == [
            "0,a,1,9223372036854775807,9223372036854775807",
            "10000,a,2,9223372036854775807,9223372036854775802",
            "20000,a,1,-5,-5",
        ])
    }
}

@Suite struct RecordDedupeTests {
    let fields = [Field(name: "k", type: .string), Field(name: "t", type: .int64), Field(name: "id", type: .string, nullable: true),
                  Field(name: "v", type: .int64, nullable: true)]

    @Test func spansAreInclusiveAndRestartAfterThem() {
        let pipeline = recordsPipeline(fields, delay: 100_000, [AggregateSpec(.count)], dedupe: DedupeSpec(field: "id", withinMs: 1000))
        let result = Oracle.run(pipeline: pipeline, partition: 0, text: text([
            #"{"k":"a","t":1000,"id":"A"}"#,  // 0: kept, span of A starts at 1000
            #"{"k":"a","t":2000,"id":"A"}"#,  // 1: |2000 − 1000| = 1000 ≤ 1000: duplicate (inclusive)
            #"{"k":"a","t":2001,"id":"A"}"#,  // 2: 1001 > 1000: kept, new span at 2001
            #"{"k":"a","t":2500,"id":"A"}"#,  // 3: 499: duplicate
            #"{"k":"a","t":1500,"id":"A"}"#,  // 4: |1500 − 2001| = 501: duplicate (earlier times count too)
            #"{"k":"a","t":900,"id":"A"}"#,   // 5: 1101: kept, new span at 900
            #"{"k":"a","t":1900,"id":"A"}"#,  // 6: 1000: duplicate
            #"{"k":"a","t":1000,"id":null}"#, // 7: null is never a duplicate
            #"{"k":"a","t":1000}"#,           // 8: missing: null
            #"{"k":"a","t":2000,"id":"B"}"#,  // 9: kept
        ]))
        #expect(result.rows == ["0,a,6"])  // 0, 2, 5, 7, 8, 9
        #expect(result.duplicates == [1, 3, 4, 6].map { OracleDuplicate(partition: 0, offset: $0, value: "A") })
    }

    @Test func lateEventsLeaveDedupeAloneAndFilteredEventsMoveTheWatermark() {
        let pipeline = recordsPipeline(fields, window: .tumbling(sizeMs: 1000), [AggregateSpec(.count)],
                                       filter: "v > 0", dedupe: DedupeSpec(field: "id", withinMs: 10_000))
        let result = Oracle.run(pipeline: pipeline, partition: 0, text: text([
            #"{"k":"a","t":5000,"id":"A","v":1}"#,  // 0: kept. W = 5000
            #"{"k":"a","t":100,"id":"B","v":1}"#,   // 1: [0, 1000) ends ≤ 5000: late; B not seeded
            #"{"k":"a","t":5100,"id":"B","v":1}"#,  // 2: B unseen: kept. W = 5100
            #"{"k":"a","t":300,"id":"A","v":1}"#,   // 3: late (before dedupe): not a duplicate
            #"{"k":"a","t":9000,"id":"C","v":0}"#,  // 4: filtered out, but W = 9000
            #"{"k":"a","t":8500,"id":"D","v":1}"#,  // 5: [8000, 9000) ends ≤ 9000: late
            #"{"k":"a","t":9500,"id":"E"}"#,        // 6: filter null: dropped
            #"{"k":"a","t":5200,"id":"A","v":1}"#,  // 7: late ([5000, 6000) ends ≤ 9000): no duplicate either
        ]))
        #expect(result.rows == ["5000,a,2"])
        #expect(result.late == late(1, 3, 5, 7))
        #expect(result.duplicates.isEmpty)
        #expect(result.filtered == 2)
    }

    @Test func aDerivedFieldErrorAfterTheWatermarkMoved() {
        // q is not the key or time: derived after W moved; its division by zero is a dead letter.
        let pipeline = recordsPipeline(fields, window: .tumbling(sizeMs: 1000), [AggregateSpec(.sum, "q")],
                                       derive: [DerivedField(name: "q", expression: "100 / v")])
        let result = Oracle.run(pipeline: pipeline, partition: 0, text: text([
            #"{"k":"a","t":5000,"v":0}"#,  // 0: dead letter; W = 5000
            #"{"k":"a","t":3000,"v":4}"#,  // 1: [3000, 4000) ends ≤ 5000: late
            #"{"k":"a","t":5500,"v":4}"#,  // 2: 100 / 4 = 25
        ]))
        #expect(dead(result) == [0])
        #expect(result.late == late(1))
        #expect(result.rows == ["5000,a,25"])
    }

    @Test func aDerivedKeyIsDerivedFirstAndItsErrorLeavesTheWatermark() {
        let pipeline = recordsPipeline(fields, keys: ["kk"], window: .tumbling(sizeMs: 1000), [AggregateSpec(.count)],
                                       derive: [DerivedField(name: "kk", expression: "100 / v")])
        let result = Oracle.run(pipeline: pipeline, partition: 0, text: text([
            #"{"k":"a","t":5000,"v":0}"#,  // 0: the key cannot be derived: dead letter, W unchanged
            #"{"k":"a","t":3000,"v":4}"#,  // 1: not late; key 25
            #"{"k":"a","t":3100}"#,        // 2: v null: key null: dead letter
        ]))
        #expect(dead(result) == [0, 2])
        #expect(result.rows == ["3000,25,1"])
    }
}

@Suite struct RecordPartitionTests {
    @Test func moduloIsEuclideanAndAMisplacedKeyIsADeadLetter() {
        let pipeline = recordsPipeline(
            [Field(name: "k", type: .int64, nullable: true), Field(name: "t", type: .int64)],
            [AggregateSpec(.count)], partitionCheck: true)
        #expect(pipeline.partitioner == .modulo)
        let result = Oracle.run(pipeline: pipeline, partition: 1, text: text([
            #"{"k":4,"t":1000}"#,     // 4 mod 3 = 1
            #"{"k":-2,"t":1000}"#,    // ((-2 % 3) + 3) % 3 = 1
            #"{"k":5,"t":100000}"#,   // 5 mod 3 = 2: dead letter, and W stays
            #"{"k":null,"t":1000}"#,  // a null key part: dead letter
            #"{"k":4,"t":2000}"#,     // not late: W is still 1000
        ]), partitions: 3)
        #expect(result.deadLetters.map(\.offset) == [2, 3])
        #expect(result.deadLetters.first?.reason == "key 5 belongs to partition 2, read in 1")
        #expect(result.rows == ["0,-2,1", "0,4,2"])
        #expect(result.late.isEmpty)
    }

    @Test func murmur2OverCompositeKeyBytes() {
        // Partitions of 4 computed by hand with Kafka's murmur2 (checked against its vectors
        // murmur2("21") = -973932308, murmur2("foobar") = -790332482) over the canonical bytes:
        // "cust-1\u{1f}42" → 2, "cust-2\u{1f}42" → 1, "cust-3\u{1f}-7" → 0, "cust-1\u{1f}12.50" → 2.
        let pipeline = recordsPipeline(
            [Field(name: "c", type: .string), Field(name: "n", type: .int64), Field(name: "t", type: .int64)],
            keys: ["c", "n"], [AggregateSpec(.count)], partitionCheck: true)
        #expect(pipeline.partitioner == .murmur2)
        let result = Oracle.run(pipeline: pipeline, partition: 2, text: text([
            #"{"c":"cust-1","n":42,"t":1}"#,
            #"{"c":"cust-2","n":42,"t":1}"#,
            #"{"c":"cust-3","n":-7,"t":1}"#,
        ]), partitions: 4)
        #expect(result.rows == ["0,cust-1,42,1"])
        #expect(result.deadLetters.map(\.reason) == ["key cust-2,42 belongs to partition 1, read in 2",
                                                     "key cust-3,-7 belongs to partition 0, read in 2"])
        let decimalKey = recordsPipeline(
            [Field(name: "c", type: .string), Field(name: "d", type: .decimal, scale: 2), Field(name: "t", type: .int64)],
            keys: ["c", "d"], [AggregateSpec(.count)], partitionCheck: true)
        let one = Oracle.run(pipeline: decimalKey, partition: 2, text: text([#"{"c":"cust-1","d":12.5,"t":1}"#]), partitions: 4)
        #expect(one.rows == ["0,cust-1,12.50,1"])
        #expect(RecordRun.keyBytes([.string("cust-1"), .decimal(1250, scale: 2)]) == Array("cust-1\u{1f}12.50".utf8))
        #expect(RecordRun.keyBytes([.int64(-7), .bool(true), .timestamp(-5)]) == Array("-7\u{1f}true\u{1f}-5".utf8))
    }
}

@Suite struct RecordInputTests {
    @Test func csvHeaderAndQuotedMultiLineRecordsTakeOneOffset() throws {
        let pipeline = recordsPipeline(
            [Field(name: "k", type: .string), Field(name: "t", type: .int64), Field(name: "name", type: .string, nullable: true)],
            [AggregateSpec(.count), AggregateSpec(.countDistinct, "name"), AggregateSpec(.first, "name"), AggregateSpec(.last, "name")],
            format: .csv(header: true, delimiter: UInt8(ascii: ",")))
        let input = Array((
            "name,k,t\r\n"                 // header, mapped by name; takes no offset
            + "\"multi\nline\",a,1000\r\n"  // 0: one record over two lines
            + "plain,a,2000\n"             // 1
            + "\n"                         // 2: empty record: dead letter
            + "\"bad\"x,a,3000\n"          // 3: text after a closing quote: dead letter
            + ",a,4000\n"                  // 4: unquoted empty: null
            + "\"\",a,5000\n"              // 5: "": the empty string
            + "\"open,a,6000\n"            // 6: the quote never closes: dead letter to the end
        ).utf8)
        let result = Oracle.run(pipeline: pipeline, partition: 0, text: input)
        #expect(dead(result) == [2, 3, 6])
        // count 4 (0, 1, 4, 5); distinct non-null names: "multi\nline", "plain", "" = 3; first by
        // time: t 1000; last non-null: t 5000, "" (quoted when written: "" is not null).
        #expect(result.rows == ["0,a,4,3,\"multi\nline\",\"\""])
        let lines = InputLines.records(of: input, format: pipeline.format, partition: 0, at: [0, 2, 6])
        #expect(lines[PartitionOffset(partition: 0, offset: 0)] == "\"multi\nline\",a,1000")
        #expect(lines[PartitionOffset(partition: 0, offset: 2)] == "")
        #expect(lines[PartitionOffset(partition: 0, offset: 6)] == "\"open,a,6000\n")
    }

    @Test func csvWithoutHeaderNeedsEveryFieldInOrder() {
        let pipeline = recordsPipeline(
            [Field(name: "k", type: .string), Field(name: "t", type: .timestamp), Field(name: "b", type: .bool),
             Field(name: "x", type: .float64, minimumFloat: 0)],
            [AggregateSpec(.count)], format: .csv(header: false, delimiter: UInt8(ascii: ";")))
        let result = Oracle.run(pipeline: pipeline, partition: 0, text: text([
            "a;2026-12-01T10:00:00Z;true;1.5",        // 0
            "a;1796119200000;false;0",                // 1: the same time as integer ms
            "a;2026-12-01T10:00:00Z;true",            // 2: three fields: dead letter
            "a;2026-12-01T10:00:00Z;TRUE;1",          // 3: bool is true/false only
            "a;2026-12-01T10:00:00Z;true;-0.5",       // 4: below min 0
            "a;2026-12-01T10:00:00;true;1",           // 5: no offset
            "a;2026-12-01T11:00:00+01:00;true;nan",   // 6: nan is not a number
        ]))
        #expect(dead(result) == [2, 3, 4, 5, 6])
        // 2026-12-01T10:00:00Z = 1796119200000 ms; its 10 s window starts there.
        #expect(result.rows == ["1796119200000,a,2"])
    }

    @Test func jsonRules() {
        let pipeline = recordsPipeline(
            [Field(name: "k", type: .string, path: ["who", "id"]), Field(name: "t", type: .timestamp),
             Field(name: "amount", type: .decimal, scale: 2), Field(name: "n", type: .int64, nullable: true),
             Field(name: "ok", type: .bool, nullable: true)],
            delay: 1 << 61,  // nothing late here
            [AggregateSpec(.count), AggregateSpec(.sum, "amount"), AggregateSpec(.sum, "n")])
        let result = Oracle.run(pipeline: pipeline, partition: 0, text: text([
            #"{"who":{"id":"a","x":1},"t":"2026-12-01T10:00:00.5+01:00","amount":"12.34","extra":[1,{"y":2}]}"#,  // 0
            #"{"who":{"id":"a"},"t":1000,"amount":"12.34","t":1000}"#,      // 1: duplicated key
            #"{"who":{"id":"a","id":"b"},"t":1000,"amount":1}"#,           // 2: duplicated nested key
            #"{"who":{"id":"a"},"\u0074":1000,"t":1000,"amount":1}"#,      // 3: "\u0074" is "t": duplicated
            #"{"who":{"id":"a"},"t":1000,"amount":"12.345"}"#,             // 4: 3 fraction digits
            #"{"who":{"id":"a"},"t":1000,"amount":12.345}"#,               // 5: as a number too
            #"{"who":{"id":"a"},"t":1000,"amount":"1.5e1"}"#,              // 6: no exponent in a string
            #"{"who":{"id":"a"},"t":1000,"amount":1.5e1}"#,                // 7: 15.00
            #"{"who":{"id":"a"},"t":1000,"amount":1,"n":1.0}"#,            // 8: int64 takes integers only
            #"{"who":{"id":"a"},"t":1000,"amount":1,"n":"5"}"#,            // 9: not strings
            #"{"who":{"id":"a"},"t":1000,"amount":1,"n":1e2}"#,            // 10: not exponents
            #"{"who":{"id":"a"},"t":1000,"amount":1,"ok":"true"}"#,        // 11: bool is true/false only
            #"{"who":{"id":"a"},"t":"2026-12-01T10:00:00","amount":1}"#,   // 12: no offset
            #"{"who":{"id":"a"},"t":4611686018427387905,"amount":1}"#,     // 13: beyond 2^62 ms
            #"{"who":null,"t":1000,"amount":1}"#,                          // 14: key missing (not nullable)
            #"{"who":{"id":"a"},"t":1000,"amount":1,"n":-9,"ok":false}"#,  // 15
            #"["who"]"#,                                                   // 16: not an object
            "",                                                            // 17: empty
            #"{"who":{"id":"a"},"t":1000,"amount":"12.30"}"#,              // 18
        ]))
        #expect(dead(result) == [1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 16, 17])
        // 0: 2026-12-01T09:00:00.500Z = 1796115600500; its window starts at 1796115600000. Others
        // at t 1000, window 0: 7 (15.00), 15 (1.00, n -9), 18 (12.30): sum 28.30, sum n -9.
        #expect(result.rows == ["0,a,3,28.30,-9", "1796115600000,a,1,12.34,"])
    }
}

@Suite struct RecordSessionAndOutputTests {
    @Test func sessionsMergeAndOverflowNamesTheMergedSession() {
        let pipeline = recordsPipeline(
            [Field(name: "k", type: .string), Field(name: "t", type: .int64), Field(name: "v", type: .int64)],
            window: .session(gapMs: 1000), [AggregateSpec(.count), AggregateSpec(.sum, "v")])
        let result = Oracle.run(pipeline: pipeline, partition: 0, text: text([
            #"{"k":"a","t":1000,"v":9223372036854775807}"#,  // 0: [1000, 2000). W 1000
            #"{"k":"a","t":3000,"v":1}"#,     // 1: [3000, 4000), apart. W 3000: [1000, 2000) is done
            #"{"k":"a","t":2500,"v":0}"#,     // 2: [2500, 3500) overlaps [3000, 4000): [2500, 4000), sum 1
            #"{"k":"a","t":3900,"v":9223372036854775807}"#,  // 3: would merge to [2500, 4900) with sum 1 + max: dead letter. W 3900
            #"{"k":"a","t":1500,"v":5}"#,     // 4: [1500, 2500) touches [2500, 4000): [1500, 4000), end > 3900: not late
            #"{"k":"a","t":0,"v":1}"#,        // 5: [0, 1000) meets no open session and ends <= 3900: late
        ]))
        #expect(result.deadLetters == [DeadLetter(partition: 0, offset: 3, reason: "overflow: sum_v of window 2500")])
        #expect(result.late == late(5))
        #expect(result.rows == ["1000,a,1,9223372036854775807", "1500,a,3,6"])
    }

    @Test func writerAddsDuplicatesForRecordsJobs() throws {
        let pipeline = recordsPipeline([Field(name: "k", type: .string), Field(name: "t", type: .int64), Field(name: "id", type: .string)],
                                       delay: 100_000, [AggregateSpec(.count)], dedupe: DedupeSpec(field: "id", withinMs: 10))
        let result = Oracle.run(pipeline: pipeline, partition: 0, text: text([
            #"{"k":"a,b","t":1,"id":"x,y"}"#, #"{"k":"a,b","t":2,"id":"x,y"}"#,  // 1: a duplicate of 0
        ]))
        let directory = try temporaryDirectory()
        try Oracle.write(result, pipeline: pipeline, to: directory)
        func read(_ file: String) throws -> String { try String(contentsOfFile: directory + "/" + file, encoding: .utf8) }
        #expect(try read("results.csv") == "window_start_ms,k,count\n0,\"a,b\",1\n")
        #expect(try read("duplicates.csv") == "partition,offset,value\n0,1,\"x,y\"\n")
    }
}

@Suite struct RecordFileInputTests {
    @Test func filePartitionsAreCheckedAgainstTheirCountAndRejectedRecordsReadBack() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // Modulo over 2 partitions: even keys in 0, odd keys in 1.
        let partitions = [
            "{\"k\":2,\"t\":5000}\r\n{\"k\":3,\"t\":6000}\n{\"k\":4,\"t\":100}\n",  // 1: 3 is odd (dead letter); 2: late (W 5000)
            "{\"k\":1,\"t\":1}\nnot json",                                          // 1: not JSON, no final newline
        ]
        for (p, content) in partitions.enumerated() {
            let path = (directory as NSString).appendingPathComponent(PartitionFiles.name(partition: p, format: .json))
            try Data(content.utf8).write(to: URL(fileURLWithPath: path))
        }
        let pipeline = recordsPipeline([Field(name: "k", type: .int64), Field(name: "t", type: .int64)],
                                       window: .tumbling(sizeMs: 1000), [AggregateSpec(.count)], partitionCheck: true)
        let input = try WorkloadInput.parse("file:\(directory)")
        let result = try Oracle.run(pipeline: pipeline, input: input)
        #expect(result.rows == ["0,1,1", "5000,2,1"])
        #expect(result.late == [PartitionOffset(partition: 0, offset: 2)])
        #expect(result.deadLetters.map(\.position) == [PartitionOffset(partition: 0, offset: 1), PartitionOffset(partition: 1, offset: 1)])
        #expect(result.deadLetters.first?.reason == "key 3 belongs to partition 1, read in 0")
        let lines = try InputLines.rejected(by: result, in: input, pipeline: pipeline)
        #expect(lines == [PartitionOffset(partition: 0, offset: 1): "{\"k\":3,\"t\":6000}",
                          PartitionOffset(partition: 0, offset: 2): "{\"k\":4,\"t\":100}",
                          PartitionOffset(partition: 1, offset: 1): "not json"])
    }
}
