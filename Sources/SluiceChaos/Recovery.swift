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

    /// Fills in `recoverySeconds` and `perPartition` of each fault.
    static func analyze(_ faults: inout [FaultRecord], observations: Observations, ends: [Int: Int64]) {
        var times: [Int: [Double]] = [:]
        var finished: [Int: Double] = [:]
        for c in observations.commits {
            times[c.partition, default: []].append(c.t)
            if let end = ends[c.partition], c.toOffset >= end { finished[c.partition] = min(finished[c.partition] ?? c.t, c.t) }
        }
        for i in faults.indices {
            let start = faults[i].injectedAt
            // For a kill the fault is the instant; recovery runs from it whatever the restart does.
            let end = faults[i].kind == .killWorker ? start : (faults[i].healedAt ?? start)
            var worst: Double? = 0
            var per: [String: Double] = [:]
            for p in faults[i].affected {
                let s = stall(commitTimes: times[p] ?? [], finishedAt: finished[p], start: start, end: end)
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
