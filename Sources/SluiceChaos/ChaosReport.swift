import Foundation

/// Everything a run found, written as report.json; report.md and timeline.svg are drawn from it.
public struct ChaosReport: Sendable, Codable {
    public var suite: String
    public var suiteFile: String
    public var store: String
    /// The nemesis seed in force (the suite's, or --seed), if the suite draws faults.
    public var seed: UInt64?
    public var startedAt: String
    public var build: String
    public var workers: Int
    public var partitions: Int
    public var events: Int
    public var eventsCommitted: Int64
    public var runSeconds: Double
    public var finishedInTime: Bool
    /// True when a signal ended the run early (absent otherwise, and in reports of older runs).
    public var interrupted: Bool?
    public var recoveryBoundSeconds: Double
    /// Every check passed.
    public var passed: Bool
    public var checks: [CheckResult]
    public var faults: [FaultRecord]
    public var worstRecoverySeconds: Double?
    /// Lines in each partition's input (by partition number); absent in reports of older runs.
    public var partitionEnds: [String: Int64]?
    /// Commands that verify the kept run again, from DIR.
    public var reverify: [String]
    /// A Kafka source or sink, described (absent: the generator and the store's own sink).
    public var source: String? = nil
    public var sink: String? = nil
    /// The rows the results check compared (the oracle's); faults injected by kind; the median
    /// recovery over the faults that hit partitions. Absent in reports of older runs.
    public var rowsChecked: Int? = nil
    public var faultsByKind: [String: Int]? = nil
    public var medianRecoverySeconds: Double? = nil

    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }

    public func markdown() -> String {
        var lines: [String] = []
        lines.append("# Chaos report: \(suite)\(seed.map { " (seed \($0))" } ?? "")")
        lines.append("")
        lines.append("**\(passed ? "PASS" : "FAIL")**: \(checks.filter(\.passed).count) of \(checks.count) checks passed; "
                     + "\(faults.count) faults injected; worst recovery \(worstRecoverySeconds.map { String(format: "%.1f s", $0) } ?? "none (a partition never recovered)") "
                     + "(bound \(format(recoveryBoundSeconds)) s).")
        lines.append("")
        lines.append("| | |")
        lines.append("| --- | --- |")
        lines.append("| suite | `\(suiteFile)` |")
        lines.append("| store | \(store) |")
        if let source { lines.append("| source | \(source) |") }
        if let sink { lines.append("| sink | \(sink) |") }
        if let seed { lines.append("| nemesis seed | \(seed) |") }
        lines.append("| started | \(startedAt) |")
        lines.append("| build | \(build) |")
        lines.append("| cluster | \(workers) workers at the start, \(partitions) partitions |")
        lines.append("| workload | \(events) events; \(eventsCommitted) lines committed |")
        if let rowsChecked { lines.append("| rows checked | \(rowsChecked) (every result row against the oracle) |") }
        if let faultsByKind {
            let kinds = faultsByKind.sorted { ($1.value, $0.key) < ($0.value, $1.key) }.map { "\($0.key) \($0.value)" }
            lines.append("| faults by kind | \(kinds.joined(separator: ", ")) (\(faultsByKind.count) kinds) |")
        }
        if let medianRecoverySeconds { lines.append("| recovery | median \(String(format: "%.1f", medianRecoverySeconds)) s, worst \(worstRecoverySeconds.map { String(format: "%.1f s", $0) } ?? "never") |") }
        lines.append("| run time | \(String(format: "%.1f", runSeconds)) s\(finishedInTime ? "" : interrupted == true ? " (**interrupted by a signal before every partition finished**)" : " (**stopped at the bound before every partition finished**)") |")
        lines.append("")
        lines.append("![timeline](timeline.svg)")
        lines.append("")
        lines.append("## Checks")
        lines.append("")
        lines.append("| check | verdict | evidence |")
        lines.append("| --- | --- | --- |")
        for c in checks {
            lines.append("| \(c.name) | \(c.passed ? "pass" : "**FAIL**") | \(c.evidence.map(escape).joined(separator: "<br>")) |")
        }
        lines.append("")
        lines.append("## Faults")
        lines.append("")
        lines.append("| # | at (s) | fault | healed (s) | partitions hit | recovery (s) | what happened |")
        lines.append("| --- | --- | --- | --- | --- | --- | --- |")
        for f in faults {
            let recovery = f.affected.isEmpty ? "–" : f.recoverySeconds.map { String(format: "%.1f", $0) } ?? "**never**"
            lines.append("| \(f.index + 1) | \(String(format: "%.1f", f.injectedAt)) | \(escape(f.summary)) | "
                         + "\(f.healedAt.map { String(format: "%.1f", $0) } ?? "–") | \(f.affected.map(String.init).joined(separator: ", ")) | "
                         + "\(recovery) | \(f.notes.map(escape).joined(separator: "; ")) |")
        }
        lines.append("")
        lines.append("Recovery time: for each partition the fault hit, the longest stretch without a commit from the fault's start "
                     + "until it healed (a kill: until the first commit after it), as seen by polling the store every 250 ms; the fault's is the worst of its partitions.")
        lines.append("")
        lines.append("## Verify it yourself")
        lines.append("")
        lines.append("From this run's directory (input, sink, stores and logs are kept there):")
        lines.append("")
        lines.append("```sh")
        lines.append(contentsOf: reverify)
        lines.append("```")
        return lines.joined(separator: "\n") + "\n"
    }

    private func escape(_ text: String) -> String { text.replacingOccurrences(of: "|", with: "\\|") }
}

extension ChaosReport {
    /// Draws report.md and timeline.svg again from a run directory's report.json and
    /// observations.json (after a change to the drawing, or to read an old run).
    public static func render(directory: String) throws -> ChaosReport {
        func file(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
        guard let reportData = FileManager.default.contents(atPath: file("report.json")),
              let observationData = FileManager.default.contents(atPath: file("observations.json")) else {
            throw ChaosRefusal("\(directory) holds no report.json and observations.json of a chaos run")
        }
        var report = try JSONDecoder().decode(ChaosReport.self, from: reportData)
        let observations = try JSONDecoder().decode(Observations.self, from: observationData)
        // Recovery is analyzed again from the recorded observations, as the current harness does.
        var ends: [Int: Int64] = [:]
        if let recorded = report.partitionEnds {
            for (p, end) in recorded { if let n = Int(p) { ends[n] = end } }
        } else {
            for c in observations.commits { ends[c.partition] = max(ends[c.partition] ?? 0, c.toOffset) }
        }
        RecoveryAnalysis.analyze(&report.faults, observations: observations, ends: ends)
        if let i = report.checks.firstIndex(where: { $0.name.hasPrefix("every fault recovered") }) {
            report.checks[i] = RecoveryAnalysis.check(report.faults, bound: report.recoveryBoundSeconds)
        }
        report.worstRecoverySeconds = RecoveryAnalysis.worst(report.faults)
        if report.medianRecoverySeconds != nil { report.medianRecoverySeconds = RecoveryAnalysis.median(report.faults) }
        report.passed = report.checks.allSatisfy(\.passed)
        try report.json().write(to: URL(fileURLWithPath: file("report.json")))
        try report.markdown().write(toFile: file("report.md"), atomically: true, encoding: .utf8)
        try Timeline.svg(report: report, observations: observations).write(toFile: file("timeline.svg"), atomically: true, encoding: .utf8)
        return report
    }
}
