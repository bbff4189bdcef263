// SluiceSimulation owns the deterministic simulator of the whole lease protocol: the production
// `CoordinatorCore` and `WorkerCore` (not models of them), a simulated network, processes, clocks
// and checkpoint store, one seeded scheduler (SplitMix64) that orders every message, timer and
// fault, and the named invariants checked after every step. It must do no I/O (no files, sockets,
// wall clocks or threads): a schedule is a pure function of its seed and configuration, so a seed
// reproduces it exactly. `sluice sim` and the SluiceSimulationTests drive it.

import SluiceCore

/// The simulated checkpoint store: the fenced-commit semantics of `CheckpointStore` (SQLite) and
/// `PostgresCheckpointStore`, without the state blobs and the sink's rows. Per partition an epoch
/// that only grows (`claim`), a commit accepted only from the stored epoch and only as the next
/// seq, and the log of every accepted commit and claim. The conformance tests run the same
/// operations against this store and the SQLite one and compare every outcome.
public struct SimCheckpointStore: Sendable, Equatable {
    /// One accepted commit: the offsets [from, to) of `partition`, as the real `CommitRecord`.
    public struct Commit: Sendable, Equatable, CustomStringConvertible {
        public var partition: Int
        public var seq: Int64
        public var epoch: Int64
        public var from: Int64
        public var to: Int64
        public var finished: Bool
        public init(partition: Int, seq: Int64, epoch: Int64, from: Int64, to: Int64, finished: Bool) {
            (self.partition, self.seq, self.epoch, self.from, self.to, self.finished) = (partition, seq, epoch, from, to, finished)
        }
        public var description: String { "p\(partition) #\(seq) e\(epoch) [\(from),\(to))\(finished ? " finished" : "")" }
    }

    /// The outcome of a commit, as a real store reports it.
    public enum CommitOutcome: Sendable, Equatable {
        case accepted
        /// `CommitFenced`: the stored epoch is another (newer) one.
        case fenced(currentEpoch: Int64)
        /// `StoreError` "checkpoint N does not follow the stored M".
        case outOfSequence(stored: Int64)
    }

    /// The newest checkpoint of a partition: what a new owner resumes from.
    public struct Last: Sendable, Equatable {
        public var seq: Int64 = 0
        public var offset: Int64 = 0
        public var finished = false
        public init(seq: Int64 = 0, offset: Int64 = 0, finished: Bool = false) {
            (self.seq, self.offset, self.finished) = (seq, offset, finished)
        }
    }

    public private(set) var epochs: [Int: Int64] = [:]
    public private(set) var commits: [Int: [Commit]] = [:]
    /// Every accepted claim (partition, epoch, the last seq at that moment), in order.
    public private(set) var claims: [(partition: Int, epoch: Int64, afterSeq: Int64)] = []
    public var plantedBugs: Set<PlantedBug> = []

    public init() {}

    public static func == (a: SimCheckpointStore, b: SimCheckpointStore) -> Bool {
        a.epochs == b.epochs && a.commits == b.commits && a.claims.elementsEqual(b.claims, by: { $0 == $1 })
    }

    public func epoch(partition: Int) -> Int64 { epochs[partition] ?? 0 }

    public func last(partition: Int) -> Last {
        guard let c = commits[partition]?.last else { return Last() }
        return Last(seq: c.seq, offset: c.to, finished: c.finished)
    }

    /// Raises the partition's epoch to `epoch`; false if it already has a newer one (claiming the
    /// current epoch again succeeds, as in the real stores).
    public mutating func claim(partition: Int, epoch: Int64) -> Bool {
        guard self.epoch(partition: partition) <= epoch else { return false }
        epochs[partition] = epoch
        claims.append((partition, epoch, last(partition: partition).seq))
        return true
    }

    /// Forgets the partition's commits after `seq` (the real stores' `rollBack`, when the newest
    /// checkpoint is corrupt and the one before is restored; the caller holds the stored epoch).
    public mutating func rollBack(partition: Int, to seq: Int64) {
        commits[partition]?.removeAll { $0.seq > seq }
    }

    /// The fenced commit: accepted only from the stored epoch and as the next seq; otherwise
    /// nothing is written.
    public mutating func commit(_ c: Commit) -> CommitOutcome {
        let current = epoch(partition: c.partition)
        guard current == c.epoch || plantedBugs.armed(.skipEpochCheck) else { return .fenced(currentEpoch: current) }
        let lastSeq = last(partition: c.partition).seq
        guard c.seq == lastSeq + 1 else { return .outOfSequence(stored: lastSeq) }
        commits[c.partition, default: []].append(c)
        return .accepted
    }
}
