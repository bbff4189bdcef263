import SluiceStorage

/// One check's verdict with the evidence behind it (counts and the first offending records).
public struct CheckResult: Sendable, Codable, Equatable {
    public var name: String
    public var passed: Bool
    public var evidence: [String]

    public init(name: String, passed: Bool, evidence: [String]) {
        self.name = name
        self.passed = passed
        self.evidence = evidence
    }
}

/// The checks on the store's own records: the commit log and the claims log. Pure functions, so
/// that hand-made bad logs can prove they catch what they must.
public enum CommitLogChecks {
    typealias Commit = CheckpointStore.CommitRecord
    static let examples = 5

    /// Each partition's commits are seq 1, 2, 3, … and each starts where the one before ended
    /// (the first at offset 0): no input skipped, none committed twice.
    public static func chain(_ log: [CheckpointStore.CommitRecord]) -> CheckResult {
        var problems: [String] = []
        for (partition, commits) in byPartition(log) {
            var previous: Commit?
            for c in commits {
                let expectedSeq = (previous?.seq ?? 0) + 1
                let expectedFrom = previous?.toOffset ?? 0
                if c.seq != expectedSeq {
                    problems.append("partition \(partition): seq \(c.seq) follows \(previous?.seq ?? 0) (expected \(expectedSeq))")
                }
                if c.fromOffset != expectedFrom {
                    problems.append("partition \(partition): seq \(c.seq) covers [\(c.fromOffset), \(c.toOffset)) but the chain stood at \(expectedFrom)"
                                    + (c.fromOffset > expectedFrom ? " (a gap)" : " (an overlap)"))
                }
                if c.toOffset < c.fromOffset {
                    problems.append("partition \(partition): seq \(c.seq) ends (\(c.toOffset)) before it starts (\(c.fromOffset))")
                }
                previous = c
            }
        }
        return CheckResult(name: "checkpoint chains are gap-free", passed: problems.isEmpty,
                           evidence: problems.isEmpty ? ["\(log.count) commits in \(Set(log.map(\.partition)).count) partitions, each starting where the last ended"]
                                                      : summarize(problems))
    }

    /// Along each partition's chain, epochs never go down.
    public static func epochs(_ log: [CheckpointStore.CommitRecord]) -> CheckResult {
        var problems: [String] = []
        var changes = 0
        for (partition, commits) in byPartition(log) {
            for (a, b) in zip(commits, commits.dropFirst()) {
                if b.epoch < a.epoch { problems.append("partition \(partition): seq \(b.seq) has epoch \(b.epoch) after epoch \(a.epoch) at seq \(a.seq)") }
                if b.epoch != a.epoch { changes += 1 }
            }
        }
        return CheckResult(name: "epochs never go down", passed: problems.isEmpty,
                           evidence: problems.isEmpty ? ["\(changes) changes of owner epoch along the chains, all upward"] : summarize(problems))
    }

    /// Every accepted commit carries the highest epoch claimed before it: a commit from an epoch
    /// that a newer claim had fenced off would show here even if its output happened to be right.
    public static func fencing(commits: [CheckpointStore.CommitRecord], claims: [CheckpointStore.ClaimRecord]) -> CheckResult {
        var claimsByPartition: [Int: [CheckpointStore.ClaimRecord]] = [:]
        for c in claims { claimsByPartition[c.partition, default: []].append(c) }
        var problems: [String] = []
        for c in commits {
            // Claims recorded with after_seq < seq happened before this commit (the store serializes both).
            let before = (claimsByPartition[c.partition] ?? []).filter { $0.afterSeq < c.seq }
            guard let highest = before.map(\.epoch).max() else {
                problems.append("partition \(c.partition): seq \(c.seq) (epoch \(c.epoch)) was committed with no claim before it")
                continue
            }
            if c.epoch < highest {
                problems.append("partition \(c.partition): seq \(c.seq) committed by epoch \(c.epoch) after epoch \(highest) had claimed the partition (a fenced commit was accepted)")
            } else if c.epoch > highest {
                problems.append("partition \(c.partition): seq \(c.seq) committed by epoch \(c.epoch), which never claimed the partition (highest claim \(highest))")
            }
        }
        return CheckResult(name: "no commit from a fenced epoch", passed: problems.isEmpty,
                           evidence: problems.isEmpty ? ["\(commits.count) commits checked against \(claims.count) claims"] : summarize(problems))
    }

    /// Every partition's chain reaches the end of its input.
    public static func reachedEnd(_ log: [CheckpointStore.CommitRecord], expected: [Int: Int64]) -> CheckResult {
        let reached = byPartition(log).reduce(into: [Int: Int64]()) { $0[$1.key] = $1.value.last?.toOffset ?? 0 }
        var problems: [String] = []
        for (partition, end) in expected.sorted(by: { $0.key < $1.key }) where reached[partition] != end {
            problems.append("partition \(partition): committed up to \(reached[partition] ?? 0) of \(end)")
        }
        return CheckResult(name: "every partition reached the end of its input", passed: problems.isEmpty,
                           evidence: problems.isEmpty ? ["\(expected.count) partitions, \(expected.values.reduce(0, +)) lines committed"] : summarize(problems))
    }

    static func byPartition(_ log: [CheckpointStore.CommitRecord]) -> [(key: Int, value: [CheckpointStore.CommitRecord])] {
        Dictionary(grouping: log, by: \.partition).mapValues { $0.sorted { $0.seq < $1.seq } }.sorted { $0.key < $1.key }
    }

    static func summarize(_ problems: [String]) -> [String] {
        ["\(problems.count) problem(s)"] + problems.prefix(examples)
    }
}
