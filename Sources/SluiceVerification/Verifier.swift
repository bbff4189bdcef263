// SluiceVerification: `sluice verify`'s comparison of a sink (read back through SluiceConnectors)
// with the independent oracle (SluiceOracle). Its own module so that the runtime and the worker,
// which never verify, do not link the oracle; it must not be imported by them.

import SluiceConnectors
import SluiceOracle

/// Compares a sink with the oracle: rows as multisets (so a duplicate is an error), late events and
/// dead letters as sets of (partition, offset, line), the line being the input's at that position
/// (`InputLines`): a sink that took a torn or altered line at the right offset fails.
///
/// Records jobs (issue 12): rows are compared as canonical text (`RecordText.row`) too, except
/// that a float64 aggregate column may differ within 1e-9 × the oracle's tolerance basis (the sum
/// of the absolute values aggregated; `RecordOutput.floatBasis`): rows left over after the exact
/// match are paired by window start and key, and a pair whose only differences are such floats
/// counts as equal. The events dedupe dropped are compared as sets of (partition, offset, value)
/// when the sink's are given.
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
    /// Rows equal to the oracle's only within the float64 tolerance (counted as matching).
    public var withinTolerance = 0
    /// Whether the sink's dropped duplicates were compared (they were given).
    public var dedupeCompared = false
    /// Dropped duplicates as `partition,offset "value"`: in the oracle only / in the sink only.
    public var dedupeMissing: [String] = []
    public var dedupeExtra: [String] = []

    public var passed: Bool {
        missing.isEmpty && extra.isEmpty && wrong.isEmpty && lateMissing.isEmpty && lateExtra.isEmpty
            && deadMissing.isEmpty && deadExtra.isEmpty && dedupeMissing.isEmpty && dedupeExtra.isEmpty
    }

    /// `inputLines`: the input's line (records: the record) at every late and dead-letter position
    /// of the oracle (`InputLines.rejected(by:in:pipeline:)`). `sinkDuplicates`: the events the
    /// sink's dedupe dropped (the value as `RecordText.text`); nil: not compared.
    public static func compare(oracle: OracleResult, sink: SinkContents, inputLines: [PartitionOffset: String],
                               sinkDuplicates: [(partition: Int, offset: Int, value: String)]? = nil) -> Verification {
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
        // Records: the typed rows behind the texts, for the float64 columns' tolerance.
        var recordOf: [String: RecordOutput] = [:]
        for r in oracle.records { recordOf[r.text] = r }
        let records = !oracle.records.isEmpty
        func windowKey(_ row: String) -> Substring {
            records ? recordWindowKey(row, keyColumns: oracle.keyColumns) : Self.windowKey(row)
        }
        // Pair leftovers that share window and key: those are wrong values, not lost rows (or,
        // for records, equal within the float tolerance).
        var missingByWindowKey: [Substring: [String]] = [:]
        for row in missing { missingByWindowKey[windowKey(row), default: []].append(row) }
        for row in extra.sorted() {
            let wk = windowKey(row)
            guard var candidates = missingByWindowKey[wk], !candidates.isEmpty else {
                v.extra.append(row)
                continue
            }
            if let i = candidates.firstIndex(where: { expected in recordOf[expected].map { closeEnough($0, row) } ?? false }) {
                candidates.remove(at: i)
                v.withinTolerance += 1
            } else if let expected = candidates.popLast() {
                v.wrong.append((expected, row))
            }
            missingByWindowKey[wk] = candidates
        }
        v.missing = missingByWindowKey.values.flatMap { $0 }.sorted()
        func expected(_ positions: [PartitionOffset]) -> [RejectedEntry] {
            positions.map { RejectedEntry(partition: $0.partition, offset: $0.offset, line: inputLines[$0] ?? "") }
        }
        (v.lateMissing, v.lateExtra) = compareSets(expected(oracle.late), sink.late)
        (v.deadMissing, v.deadExtra) = compareSets(expected(oracle.deadLetters.map(\.position)), sink.deadLetters)
        if let sinkDuplicates {
            v.dedupeCompared = true
            func entries(_ list: [(partition: Int, offset: Int, value: String)]) -> [RejectedEntry] {
                list.map { RejectedEntry(partition: $0.partition, offset: $0.offset, line: $0.value) }
            }
            (v.dedupeMissing, v.dedupeExtra) = compareSets(
                entries(oracle.duplicates.map { (partition: $0.partition, offset: $0.offset, value: $0.value) }), entries(sinkDuplicates))
        }
        return v
    }

    /// `window_start_ms` and the key columns of a records row: the text up to the comma that ends
    /// field `keyColumns + 1` (commas inside quoted fields do not count).
    static func recordWindowKey(_ row: String, keyColumns: Int) -> Substring {
        var commas = 0
        var quoted = false
        for i in row.indices {
            if row[i] == "\"" { quoted.toggle() }
            if row[i] == ",", !quoted {
                commas += 1
                if commas == keyColumns + 1 { return row[..<i] }
            }
        }
        return row[...]
    }

    /// The raw fields of a CSV row (quotes kept), split at commas outside quotes.
    static func rawFields(_ row: String) -> [Substring] {
        var fields: [Substring] = []
        var quoted = false
        var start = row.startIndex
        for i in row.indices {
            if row[i] == "\"" { quoted.toggle() }
            if row[i] == ",", !quoted {
                fields.append(row[start..<i])
                start = row.index(after: i)
            }
        }
        fields.append(row[start...])
        return fields
    }

    /// Whether a sink row equals the oracle's record but for float64 columns within 1e-9 × their
    /// basis (every other field equal as text; null only matches null).
    static func closeEnough(_ expected: RecordOutput, _ actual: String) -> Bool {
        let want = rawFields(expected.text)
        let got = rawFields(actual)
        guard want.count == got.count, want.count == expected.floatBasis.count + 1, want[0] == got[0] else { return false }
        for (i, basis) in expected.floatBasis.enumerated() {
            let (w, g) = (want[i + 1], got[i + 1])
            if w == g { continue }
            guard let basis, let a = Double(String(w)), let b = Double(String(g)), a.isFinite, b.isFinite,
                  Swift.abs(a - b) <= 1e-9 * basis else { return false }
        }
        return true
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
        if withinTolerance > 0 { lines.append("rows equal within the float64 tolerance: \(withinTolerance)") }
        if dedupeCompared { lines.append("dropped duplicates: missing \(dedupeMissing.count), extra \(dedupeExtra.count)") }
        for row in missing.prefix(limit) { lines.append("  missing: \(row)") }
        for row in extra.prefix(limit) { lines.append("  extra:   \(row)") }
        for (e, a) in wrong.prefix(limit) { lines.append("  wrong:   expected \(e), found \(a)") }
        for x in lateMissing.prefix(limit) { lines.append("  late missing (partition,offset line): \(x)") }
        for x in lateExtra.prefix(limit) { lines.append("  late extra (partition,offset line): \(x)") }
        for x in deadMissing.prefix(limit) { lines.append("  dead letter missing (partition,offset line): \(x)") }
        for x in deadExtra.prefix(limit) { lines.append("  dead letter extra (partition,offset line): \(x)") }
        for x in dedupeMissing.prefix(limit) { lines.append("  duplicate missing (partition,offset value): \(x)") }
        for x in dedupeExtra.prefix(limit) { lines.append("  duplicate extra (partition,offset value): \(x)") }
        return lines.joined(separator: "\n")
    }
}
