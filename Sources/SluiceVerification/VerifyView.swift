import SluiceConnectors
import SluiceCore
import SluiceJob
import SluiceOracle

/// `sluice verify` of a job of kind `view` over `postgres-cdc://`: the view in the sink against the
/// oracle's view of the source table as it is now. Run it once the writers have stopped and the
/// job has caught up (its lag 0 in `sluice status`): a view that is still catching up differs.
public struct ViewVerification: Sendable {
    public var viewRows = 0
    public var expectedRows = 0
    /// Keys the view lacks, keys it should not have, and keys whose row differs (a few of each).
    public var missing: [String] = []
    public var extra: [String] = []
    public var wrong: [String] = []
    public var missingCount = 0, extraCount = 0, wrongCount = 0

    public var passed: Bool { missingCount == 0 && extraCount == 0 && wrongCount == 0 }

    public func report() -> String {
        var lines = ["view: \(viewRows) rows; oracle (the source table now): \(expectedRows) rows",
                     "missing \(missingCount), extra \(extraCount), wrong \(wrongCount)"]
        for (what, keys) in [("missing", missing), ("extra", extra), ("wrong", wrong)] where !keys.isEmpty {
            lines.append("  \(what), e.g.: \(keys.joined(separator: "; "))")
        }
        lines.append(passed ? "PASS" : "FAIL")
        return lines.joined(separator: "\n")
    }

    public static func verify(job: JobSpec, input: String, output: String) throws -> ViewVerification {
        guard input.hasPrefix("postgres-cdc://") else {
            throw SourceError("sluice verify checks a view against its postgres-cdc:// source table; '\(input)' is not one")
        }
        let oracle = try ViewOracle(job: job)
        let expected = oracle.view(of: try ViewReader.tableRows(cdcURI: input, jobName: job.name))
        let keyIndices = job.pipeline.keyFields.compactMap { k in job.pipeline.schema.fields.firstIndex { $0.name == k } }
        var got: [[Value]: [Value]] = [:]
        for row in try ViewReader.viewRows(uri: output, job: job) { got[keyIndices.map { row[$0] }] = row }
        var result = ViewVerification(viewRows: got.count, expectedRows: expected.count)
        func text(_ values: [Value]) -> String { values.map(RecordText.text).joined(separator: ",") }
        for (key, row) in expected.sorted(by: { text($0.key) < text($1.key) }) {
            guard let have = got[key] else {
                result.missingCount += 1
                if result.missing.count < 3 { result.missing.append(text(row)) }
                continue
            }
            if have != row {
                result.wrongCount += 1
                if result.wrong.count < 3 { result.wrong.append("\(text(have)) should be \(text(row))") }
            }
        }
        for (key, row) in got.sorted(by: { text($0.key) < text($1.key) }) where expected[key] == nil {
            result.extraCount += 1
            if result.extra.count < 3 { result.extra.append(text(row)) }
        }
        return result
    }
}
