// `sluice verify` on records jobs: float64 columns within 1e-9 × the oracle's basis, everything
// else exact, and the dropped duplicates compared when the sink's are given.

import Testing
import SluiceCore
@testable import SluiceConnectors
import SluiceOracle
import SluiceVerification

@Suite struct VerifierRecordsTests {
    /// One row: window 0, key "a,b" (quoted: it holds the delimiter), count 2, a float sum whose
    /// basis is 10, and a decimal.
    let oracle = OracleResult(
        rows: ["0,\"a,b\",2,0.30000000000000004,1.50"],
        duplicates: [OracleDuplicate(partition: 0, offset: 3, value: "A")],
        keyColumns: 1)

    var withRecords: OracleResult {
        var o = oracle
        o.records = [RecordOutput(row: RecordRow(windowStart: 0, values: [.string("a,b"), .int64(2), .float64(0.1 + 0.2), .decimal(150, scale: 2)]),
                                  floatBasis: [nil, nil, 10, nil])]
        return o
    }

    func sink(_ rows: [String]) -> SinkContents {
        var s = SinkContents()
        s.rows = rows
        return s
    }

    @Test func floatsWithinToleranceOthersExact() {
        let o = withRecords
        #expect(o.records[0].text == o.rows[0])
        // 0.3 differs from 0.30000000000000004 by 5.6e-17 ≤ 1e-9 × 10: equal.
        let close = Verification.compare(oracle: o, sink: sink(["0,\"a,b\",2,0.3,1.50"]), inputLines: [:])
        #expect(close.passed && close.withinTolerance == 1)
        // 0.30000002 differs by 2e-8 > 1e-8: wrong.
        let far = Verification.compare(oracle: o, sink: sink(["0,\"a,b\",2,0.30000002,1.50"]), inputLines: [:])
        #expect(!far.passed && far.wrong.count == 1)
        // A decimal is exact: 1.5 is not 1.50.
        let decimal = Verification.compare(oracle: o, sink: sink(["0,\"a,b\",2,0.3,1.5"]), inputLines: [:])
        #expect(!decimal.passed && decimal.wrong.count == 1)
        // Another key is not a pair: one missing, one extra.
        let other = Verification.compare(oracle: o, sink: sink(["0,\"a,c\",2,0.3,1.50"]), inputLines: [:])
        #expect(other.missing.count == 1 && other.extra.count == 1)
    }

    @Test func duplicatesComparedWhenGiven() {
        let o = withRecords
        let rows = sink(o.rows)
        #expect(Verification.compare(oracle: o, sink: rows, inputLines: [:]).passed)  // nil: not compared
        #expect(Verification.compare(oracle: o, sink: rows, inputLines: [:], sinkDuplicates: [(0, 3, "A")]).passed)
        let wrong = Verification.compare(oracle: o, sink: rows, inputLines: [:], sinkDuplicates: [(0, 3, "B"), (0, 4, "A")])
        #expect(!wrong.passed && wrong.dedupeMissing == ["0,3 \"A\""] && wrong.dedupeExtra.count == 2)
    }
}
