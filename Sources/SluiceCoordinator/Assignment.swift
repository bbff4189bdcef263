/// Balanced, sticky assignment of partitions to workers.
///
/// Balanced: every worker gets floor(P/N) or ceil(P/N) partitions. Sticky: a worker keeps as many of
/// the partitions it holds as its quota allows, and the ceil quotas go first to the workers that
/// hold the most, so a change of membership moves as few partitions as possible. Deterministic:
/// the same inputs give the same result.
public enum Assignment {
    /// The target owner of every partition `0..<partitions` (empty when there is no worker).
    public static func balance(partitions: Int, workers: [String], current: [Int: String]) -> [Int: String] {
        guard !workers.isEmpty, partitions > 0 else { return [:] }
        let members = Set(workers)
        var held: [String: [Int]] = [:]
        for (partition, owner) in current where members.contains(owner) && partition < partitions {
            held[owner, default: []].append(partition)
        }
        // Ceil quotas to the workers holding the most (ties by id), so fewer partitions move.
        let order = workers.sorted { a, b in
            let ha = held[a]?.count ?? 0, hb = held[b]?.count ?? 0
            return ha != hb ? ha > hb : a < b
        }
        let floor = partitions / workers.count
        let extra = partitions % workers.count
        var quota: [String: Int] = [:]
        for (i, worker) in order.enumerated() { quota[worker] = floor + (i < extra ? 1 : 0) }

        var result: [Int: String] = [:]
        var free: [Int] = []
        var count: [String: Int] = [:]
        for worker in order {
            let mine = (held[worker] ?? []).sorted()
            let keep = min(mine.count, quota[worker] ?? 0)
            for p in mine.prefix(keep) { result[p] = worker }
            free.append(contentsOf: mine.dropFirst(keep))
            count[worker] = keep
        }
        var taken = [Bool](repeating: false, count: partitions)
        for p in result.keys { taken[p] = true }
        for p in free { taken[p] = true }
        for p in 0..<partitions where !taken[p] { free.append(p) }
        free.sort()
        var next = 0
        for worker in order {
            while count[worker, default: 0] < quota[worker] ?? 0, next < free.count {
                result[free[next]] = worker
                next += 1
                count[worker, default: 0] += 1
            }
        }
        return result
    }

    /// Partitions whose owner differs between two assignments.
    public static func moves(from old: [Int: String], to new: [Int: String]) -> [Int] {
        Set(old.keys).union(new.keys).filter { old[$0] != nil && old[$0] != new[$0] }.sorted()
    }
}
