import Foundation
import SluiceConnectors
import SluiceJob
import SluiceOracle
import SluiceVerification
import SluiceWorkload

extension ChaosRun {
    /// Results, late events and dead letters against the oracle recomputed from the kept input;
    /// `rows`: the rows compared (the oracle's).
    func oracleChecks(job: JobSpec, output: String, statePath: String? = nil) throws -> (checks: [CheckResult], rows: Int) {
        let input = try WorkloadInput.parse("file:" + path("input"))
        let (oracle, v) = try Verification.verify(job: job, input: input, output: output, statePath: statePath)
        let rowsPassed = v.missing.isEmpty && v.extra.isEmpty && v.wrong.isEmpty
        var rowEvidence = ["expected \(v.expectedRows) rows, found \(v.actualRows); missing \(v.missing.count), extra \(v.extra.count) (duplicates \(v.duplicates)), wrong \(v.wrong.count)"]
        rowEvidence += v.missing.prefix(3).map { "missing: \($0)" }
        rowEvidence += v.extra.prefix(3).map { "extra: \($0)" }
        rowEvidence += v.wrong.prefix(3).map { "wrong: expected \($0.expected), found \($0.actual)" }
        let lateEvidence = ["late events (partition,offset): \(oracle.late.count) expected; missing \(v.lateMissing.count), extra \(v.lateExtra.count)"]
            + v.lateMissing.prefix(3).map { "late missing: \($0)" } + v.lateExtra.prefix(3).map { "late extra: \($0)" }
        let deadEvidence = ["dead letters (partition,offset): \(oracle.deadLetters.count) expected; missing \(v.deadMissing.count), extra \(v.deadExtra.count)"]
            + v.deadMissing.prefix(3).map { "dead letter missing: \($0)" } + v.deadExtra.prefix(3).map { "dead letter extra: \($0)" }
        return ([
            CheckResult(name: "results equal the oracle", passed: rowsPassed, evidence: rowEvidence),
            CheckResult(name: "late events equal the oracle's", passed: v.lateMissing.isEmpty && v.lateExtra.isEmpty, evidence: lateEvidence),
            CheckResult(name: "dead letters equal the oracle's", passed: v.deadMissing.isEmpty && v.deadExtra.isEmpty, evidence: deadEvidence),
        ], v.expectedRows)
    }

    /// A Kafka result topic: the oracle checks on its read_committed view, which the mock cannot
    /// give, so it is read through the transaction-outcome log the workers kept (only messages of
    /// transactions logged `commit`, with Kafka's fencing applied); then the at-least-once check on
    /// the raw topic, as a read_uncommitted consumer sees it: every oracle row and every committed
    /// message is there (aborted, fenced and republished transactions may add more).
    func kafkaChecks(job: JobSpec, output: String, statePath: String, outcomesPath: String) throws -> (checks: [CheckResult], rows: Int) {
        let variable = KafkaTransactionOutcomes.environmentVariable
        // The sink's readers take the outcome log from the environment, as `sluice verify` does.
        // The harness is a process of its own (`sluice chaos run`) and its cluster has stopped.
        unsetenv(variable)
        let input = try WorkloadInput.parse("file:" + path("input"))
        let (_, raw) = try Verification.verify(job: job, input: input, output: output, statePath: statePath)
        setenv(variable, outcomesPath, 1)
        defer { unsetenv(variable) }
        var (checks, rows) = try oracleChecks(job: job, output: output, statePath: statePath)
        if let i = checks.firstIndex(where: { $0.name == "results equal the oracle" }) {
            checks[i].evidence.append("read as a read_committed consumer of a real broker would: only messages of committed transactions (transaction-outcome log)")
        }

        let spec = try KafkaSpec(uri: output)
        let log = KafkaTransactionOutcomes(path: outcomesPath)
        let committed = try KafkaTopicReader.read(spec: spec, outcomes: log) { Array($0) }
        let rawMessages = try KafkaTopicReader.read(spec: spec, outcomes: nil) { Array($0) }
        let present = Set(rawMessages)
        let lost = committed.filter { !present.contains($0) }.count
        // The committed view, kept: the topic itself is gone with the in-memory broker.
        let kept = committed.map { String(decoding: $0, as: UTF8.self) }.joined(separator: "\n") + (committed.isEmpty ? "" : "\n")
        try kept.write(toFile: path("kafka-results.jsonl"), atomically: true, encoding: .utf8)
        let counts = log.counts()
        let outcomes = ["init", "commit", "abort", "fenced"].map { "\($0) \(counts[$0] ?? 0)" }.joined(separator: ", ")
        var evidence = [
            "raw topic: \(rawMessages.count) messages; every one of the \(raw.expectedRows) oracle rows \(raw.missing.isEmpty ? "present" : "NOT present: \(raw.missing.count) missing") "
                + "(beyond them: \(raw.extra.count) extra, \(raw.duplicates) duplicates, \(raw.wrong.count) differing, from aborted, fenced or republished transactions)",
            "\(committed.count) messages of committed transactions, \(lost == 0 ? "all" : "\(committed.count - lost) of them") on the raw topic",
            "transaction-outcome log: \(outcomes)",
        ]
        evidence += raw.missing.prefix(3).map { "missing on the raw topic: \($0)" }
        checks.append(CheckResult(name: "at least once on the raw topic", passed: raw.missing.isEmpty && lost == 0, evidence: evidence))
        return (checks, rows)
    }
}
