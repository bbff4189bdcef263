import SluiceConnectors
import SluiceJob
import SluiceOracle
import SluiceVerification
import SluiceWorkload

extension ChaosRun {
    /// Results, late events and dead letters against the oracle recomputed from the kept input.
    func oracleChecks(job: JobSpec, output: String) throws -> [CheckResult] {
        let input = try WorkloadInput.parse("file:" + path("input"))
        let (oracle, v) = try Verification.verify(job: job, input: input, output: output)
        let rowsPassed = v.missing.isEmpty && v.extra.isEmpty && v.wrong.isEmpty
        var rowEvidence = ["expected \(v.expectedRows) rows, found \(v.actualRows); missing \(v.missing.count), extra \(v.extra.count) (duplicates \(v.duplicates)), wrong \(v.wrong.count)"]
        rowEvidence += v.missing.prefix(3).map { "missing: \($0)" }
        rowEvidence += v.extra.prefix(3).map { "extra: \($0)" }
        rowEvidence += v.wrong.prefix(3).map { "wrong: expected \($0.expected), found \($0.actual)" }
        let lateEvidence = ["late events (partition,offset): \(oracle.late.count) expected; missing \(v.lateMissing.count), extra \(v.lateExtra.count)"]
            + v.lateMissing.prefix(3).map { "late missing: \($0)" } + v.lateExtra.prefix(3).map { "late extra: \($0)" }
        let deadEvidence = ["dead letters (partition,offset): \(oracle.deadLetters.count) expected; missing \(v.deadMissing.count), extra \(v.deadExtra.count)"]
            + v.deadMissing.prefix(3).map { "dead letter missing: \($0)" } + v.deadExtra.prefix(3).map { "dead letter extra: \($0)" }
        return [
            CheckResult(name: "results equal the oracle", passed: rowsPassed, evidence: rowEvidence),
            CheckResult(name: "late events equal the oracle's", passed: v.lateMissing.isEmpty && v.lateExtra.isEmpty, evidence: lateEvidence),
            CheckResult(name: "dead letters equal the oracle's", passed: v.deadMissing.isEmpty && v.deadExtra.isEmpty, evidence: deadEvidence),
        ]
    }
}
