import Foundation

/// One injected fault as it happened, with the partitions it touched and how long they took to
/// commit again.
public struct FaultRecord: Sendable, Codable {
    public var index: Int
    public var kind: FaultKind
    public var target: String?
    public var summary: String
    /// Seconds since the start: planned, injected, healed (restart, SIGCONT, proxy healed, limit lifted).
    public var plannedAt: Double
    public var injectedAt: Double
    public var healedAt: Double?
    /// The partitions the fault hit: those its target held (every unfinished one for the
    /// coordinator), or for a new worker those it was given.
    public var affected: [Int]
    public var notes: [String]
    /// The worst over `affected` of the longest stretch without a commit during the fault (from its
    /// start); nil when some partition never committed again.
    public var recoverySeconds: Double?
    public var perPartition: [String: Double]
}

/// Recovery time, from commits as the harness saw them appear in the store.
enum RecoveryAnalysis {
    /// The longest stretch without a commit of one partition that starts within [start, end],
    /// counted from `start`: from the fault to the first commit after it, and any later stall while
    /// the fault lasts. 0 when the partition had finished before the fault; nil when it never
    /// committed again (and had not finished).
    static func stall(commitTimes: [Double], finishedAt: Double?, start: Double, end: Double) -> Double? {
        if let finishedAt, finishedAt <= start { return 0 }
        var cursor = start
        var worst = 0.0
        for t in commitTimes.sorted() where t > start {
            guard cursor <= end else { break }
            worst = max(worst, t - cursor)
            cursor = t
            if let finishedAt, t >= finishedAt { return worst }
        }
        return cursor <= end ? nil : worst
    }

    /// A commit of the partition's pre-fault epoch seen this soon after the fault may have been
    /// made before it (the store is polled every 250 ms): it does not count as recovery.
    static let inFlight = 0.5

    /// Fills in `recoverySeconds` and `perPartition` of each fault.
    static func analyze(_ faults: inout [FaultRecord], observations: Observations, ends: [Int: Int64]) {
        var commits: [Int: [Observations.CommitSeen]] = [:]
        var finished: [Int: Double] = [:]
        for c in observations.commits {
            commits[c.partition, default: []].append(c)
            if let end = ends[c.partition], c.toOffset >= end { finished[c.partition] = min(finished[c.partition] ?? c.t, c.t) }
        }
        for p in commits.keys { commits[p]?.sort { $0.t < $1.t } }  // once, not per fault (a soak has thousands)
        for i in faults.indices {
            let start = faults[i].injectedAt
            // For a kill the fault is the instant; recovery runs from it whatever the restart does.
            let end = faults[i].kind == .killWorker ? start : (faults[i].healedAt ?? start)
            var worst: Double? = 0
            var per: [String: Double] = [:]
            for p in faults[i].affected {
                let seen = commits[p] ?? []
                let epochBefore = seen.last { $0.t <= start }?.epoch
                let times = seen.filter { !($0.t <= start + inFlight && $0.epoch == epochBefore) }.map(\.t)
                let s = stall(commitTimes: times, finishedAt: finished[p], start: start, end: end)
                if let s {
                    per[String(p)] = (s * 10).rounded() / 10
                    worst = worst.map { max($0, s) }
                } else {
                    worst = nil
                }
            }
            faults[i].perPartition = per
            faults[i].recoverySeconds = worst.map { ($0 * 10).rounded() / 10 }
        }
    }
}

extension RecoveryAnalysis {
    /// Every fault that hit partitions recovered within `bound`.
    static func check(_ records: [FaultRecord], bound: Double) -> CheckResult {
        var problems: [String] = []
        for r in records where !r.affected.isEmpty {
            if let s = r.recoverySeconds {
                if s > bound { problems.append("fault \(r.index + 1) (\(r.summary)): \(String(format: "%.1f", s)) s") }
            } else {
                problems.append("fault \(r.index + 1) (\(r.summary)): partitions \(r.affected.filter { r.perPartition[String($0)] == nil }) never committed again")
            }
        }
        let measured = records.filter { !$0.affected.isEmpty }
        return CheckResult(name: "every fault recovered within \(format(bound)) s", passed: problems.isEmpty,
                           evidence: problems.isEmpty
                               ? ["\(measured.count) faults hit partitions; worst recovery \(worst(records).map { String(format: "%.1f s", $0) } ?? "–")"]
                               : ["\(problems.count) fault(s) over the bound"] + problems)
    }

    /// The median recovery over the faults that hit partitions and recovered (nil if none).
    static func median(_ records: [FaultRecord]) -> Double? {
        let times = records.filter { !$0.affected.isEmpty }.compactMap(\.recoverySeconds).sorted()
        guard !times.isEmpty else { return nil }
        let mid = times.count / 2
        return times.count % 2 == 1 ? times[mid] : ((times[mid - 1] + times[mid]) / 2 * 10).rounded() / 10
    }

    /// The worst recovery over the faults that hit partitions (0 if none did; nil if one never recovered).
    static func worst(_ records: [FaultRecord]) -> Double? {
        records.filter { !$0.affected.isEmpty }.reduce(Optional(0.0)) { acc, r in
            guard let acc, let s = r.recoverySeconds else { return nil }
            return max(acc, s)
        }
    }
}
