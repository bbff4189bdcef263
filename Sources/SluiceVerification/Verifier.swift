// SluiceVerification: `sluice verify`'s comparison of a sink (read back through SluiceConnectors)
// with the independent oracle (SluiceOracle). Its own module so that the runtime and the worker,
// which never verify, do not link the oracle; it must not be imported by them.

import SluiceConnectors
import SluiceOracle

/// Compares a sink with the oracle: rows as multisets (so a duplicate is an error), late events and
/// dead letters as sets of (partition, offset, line), the line being the input's at that position
/// (`InputLines`): a sink that took a torn or altered line at the right offset fails.
public struct Verification: Sendable {
    public var expectedRows = 0
    public var actualRows = 0
    /// In the oracle, not in the sink (and no sink row for that window and key).
    public var missing: [String] = []
    /// In the sink, not in the oracle (duplicates included).
    public var extra: [String] = []
    /// The same window and key with other values: (expected, actual).
    public var wrong: [(expected: String, actual: String)] = []
    public var duplicates = 0
    public var lateMissing: [String] = []
    public var lateExtra: [String] = []
    public var deadMissing: [String] = []
    public var deadExtra: [String] = []

    public var passed: Bool {
        missing.isEmpty && extra.isEmpty && wrong.isEmpty && lateMissing.isEmpty && lateExtra.isEmpty
            && deadMissing.isEmpty && deadExtra.isEmpty
    }

    /// `inputLines`: the input's line at every late and dead-letter position of the oracle
    /// (`InputLines.rejected(by:in:)`).
    public static func compare(oracle: OracleResult, sink: SinkContents, inputLines: [PartitionOffset: String]) -> Verification {
        var v = Verification()
        v.expectedRows = oracle.rows.count
        v.actualRows = sink.rows.count
        var counts: [String: Int] = [:]
        for row in oracle.rows { counts[row, default: 0] += 1 }
        var extra: [String] = []
        for row in sink.rows {
            if let n = counts[row], n > 0 {
                counts[row] = n - 1
            } else {
                if counts[row] != nil { v.duplicates += 1 }  // the oracle has it, fewer times
                extra.append(row)
            }
        }
        let missing = counts.flatMap { row, n in Array(repeating: row, count: n) }.sorted()
        // Pair leftovers that share window and key: those are wrong values, not lost rows.
        var missingByWindowKey: [Substring: [String]] = [:]
        for row in missing { missingByWindowKey[windowKey(row), default: []].append(row) }
        for row in extra.sorted() {
            let wk = windowKey(row)
            if var candidates = missingByWindowKey[wk], let expected = candidates.popLast() {
                missingByWindowKey[wk] = candidates
                v.wrong.append((expected, row))
            } else {
                v.extra.append(row)
            }
        }
        v.missing = missingByWindowKey.values.flatMap { $0 }.sorted()
        func expected(_ positions: [PartitionOffset]) -> [RejectedEntry] {
            positions.map { RejectedEntry(partition: $0.partition, offset: $0.offset, line: inputLines[$0] ?? "") }
        }
        (v.lateMissing, v.lateExtra) = compareSets(expected(oracle.late), sink.late)
        (v.deadMissing, v.deadExtra) = compareSets(expected(oracle.deadLetters.map(\.position)), sink.deadLetters)
        return v
    }

    private static func windowKey(_ row: String) -> Substring {
        var commas = 0
        for i in row.indices where row[i] == "," {
            commas += 1
            if commas == 2 { return row[..<i] }
        }
        return row[...]
    }

    /// (missing, extra) as `partition,offset "line"` texts; an entry present twice in `actual` is extra.
    private static func compareSets(_ expected: [RejectedEntry], _ actual: [RejectedEntry]) -> ([String], [String]) {
        func key(_ e: RejectedEntry) -> String { "\(e.partition),\(e.offset) \(e.line.debugDescription)" }
        var want: [String: Int] = [:]
        for e in expected { want[key(e), default: 0] += 1 }
        var extra: [String] = []
        for e in actual {
            let k = key(e)
            if let n = want[k], n > 0 { want[k] = n - 1 } else { extra.append(k) }
        }
        let missing = want.filter { $0.value > 0 }.map(\.key)
        return (missing.sorted(), extra.sorted())
    }

    /// A human report: the verdict, counts, and the first differences.
    public func report(limit: Int = 10) -> String {
        var lines: [String] = []
        lines.append(passed ? "PASS: the sink equals the oracle" : "FAIL: the sink differs from the oracle")
        lines.append("rows: expected \(expectedRows), found \(actualRows); missing \(missing.count), extra \(extra.count) (duplicates \(duplicates)), wrong \(wrong.count)")
        lines.append("late events: missing \(lateMissing.count), extra \(lateExtra.count); dead letters: missing \(deadMissing.count), extra \(deadExtra.count)")
        for row in missing.prefix(limit) { lines.append("  missing: \(row)") }
        for row in extra.prefix(limit) { lines.append("  extra:   \(row)") }
        for (e, a) in wrong.prefix(limit) { lines.append("  wrong:   expected \(e), found \(a)") }
        for x in lateMissing.prefix(limit) { lines.append("  late missing (partition,offset line): \(x)") }
        for x in lateExtra.prefix(limit) { lines.append("  late extra (partition,offset line): \(x)") }
        for x in deadMissing.prefix(limit) { lines.append("  dead letter missing (partition,offset line): \(x)") }
        for x in deadExtra.prefix(limit) { lines.append("  dead letter extra (partition,offset line): \(x)") }
        return lines.joined(separator: "\n")
    }
}
