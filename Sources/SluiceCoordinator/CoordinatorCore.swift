import SluiceWorkload  // SplitMix64, the seeded generator of the jitter
import SluiceCore

/// The coordinator's decisions, without network or clocks: membership, leases with epochs, and
/// cooperative rebalancing. Every input carries `now` (monotonic milliseconds); every output is a
/// list of actions for the transport to deliver. Epochs are written to the durable `LeaseLedger`
/// before a grant leaves, so a restarted coordinator never hands out an epoch twice.
///
/// A fencing and a failure are different news. Fenced: another owner has a newer epoch, the
/// partition moves at once. Failed (the worker's checkpoint store unreachable or refusing writes):
/// granting it straight back would fail again at once, so the partition waits out a backoff of its
/// own (`partitionBackoff`, per consecutive failure) and the worker that failed it gets no new
/// partition during a quarantine (`workerBackoff`): the partition goes to a healthy worker if there
/// is one. A commit that moves a partition forward ends both (the store works again).
public struct CoordinatorCore {
    public enum Action: Equatable, Sendable {
        case grant(worker: String, partition: Int, epoch: Int64)
        case revoke(worker: String, partition: Int, epoch: Int64)
    }

    public enum LeaseState: String, Sendable { case unassigned, granted, revoking }

    public struct PartitionState: Sendable, Equatable {
        public var owner: String?
        public var epoch: Int64 = 0
        public var state: LeaseState = .unassigned
        /// The lease ends here unless renewed (revoking leases are not renewed).
        public var deadline: Int64 = 0
        public var committedOffset: Int64 = 0
        public var offset: Int64 = 0
        public var watermark: Int64 = Int64.min
        public var lag: Int64 = 0
        public var finished = false
        /// When the partition last lost its owner (for recovery times), or nil.
        public var orphanedAt: Int64?
    }

    public struct Member: Sendable, Equatable {
        public var lastHeartbeat: Int64
        public var eventsPerSecond: Double = 0
    }

    /// A partition's progress as its worker reports it (the one type the worker's host reports too).
    public typealias Progress = PartitionProgress

    public let partitionCount: Int
    public let leaseTTL: Int64
    private let ledger: any LeaseLedger
    public private(set) var partitions: [PartitionState]
    public private(set) var members: [String: Member] = [:]
    /// Workers that released unasked (shutting down): not members again until they rejoin.
    private var leaving: Set<String> = []
    /// Leases that lapsed (owner silent past its deadline): (partition, owner, epoch), for logs.
    public private(set) var lapsed: [(partition: Int, owner: String, epoch: Int64)] = []
    /// Times without an owner, in ms, from the release (or the last renewal of a lapsed lease) to
    /// the next grant (for metrics and the demo).
    public private(set) var recoveries: [(partition: Int, ms: Int64)] = []

    /// The wait before a failed partition is granted again, and a worker's quarantine after it
    /// failed one (both grow with consecutive failures).
    public var partitionBackoff = Backoff(baseMs: 250, capMs: 4_000)
    public var workerBackoff = Backoff(baseMs: 1_000, capMs: 8_000)
    private var random: SplitMix64
    /// Consecutive failures of each partition (reset by a commit), and when it may be granted again.
    public private(set) var partitionFailures: [Int: Int] = [:]
    public private(set) var retryAt: [Int: Int64] = [:]
    /// Consecutive failures reported by each worker (reset by a commit), and until when it is given
    /// no partition (it keeps those it holds).
    public private(set) var workerFailures: [String: Int] = [:]
    public private(set) var quarantinedUntil: [String: Int64] = [:]
    /// Deliberate bugs for the simulator's tests; consulted only in debug builds (`PlantedBug`).
    public var plantedBugs: Set<PlantedBug> = []

    /// Restores the durable epochs and owners. Restored owners get one lease time to reconnect and
    /// renew before their partitions move.
    public init(partitions: Int, leaseTTL: Int64, ledger: any LeaseLedger, now: Int64, seed: UInt64 = 0x5EED) throws {
        partitionCount = partitions
        random = SplitMix64(seed: seed)
        self.leaseTTL = leaseTTL
        self.ledger = ledger
        self.partitions = Array(repeating: PartitionState(), count: partitions)
        for record in try ledger.load() where record.partition < partitions {
            self.partitions[record.partition].epoch = record.epoch
            if let owner = record.owner {
                self.partitions[record.partition].owner = owner
                self.partitions[record.partition].state = .granted
                self.partitions[record.partition].deadline = now + leaseTTL
                members[owner] = Member(lastHeartbeat: now)
            }
        }
    }

    // MARK: inputs

    public mutating func join(_ worker: String, now: Int64) throws -> [Action] {
        leaving.remove(worker)
        members[worker] = Member(lastHeartbeat: now)
        return try rebalance(now: now)
    }

    /// Renews the leases of the partitions the worker reports under their current epoch; returns
    /// the partitions renewed (with their epochs). A reported partition that is not renewed is no
    /// longer the worker's.
    public mutating func heartbeat(_ worker: String, progress: [Progress], eventsPerSecond: Double,
                                   now: Int64) throws -> (renewed: [(partition: Int, epoch: Int64)], actions: [Action]) {
        var actions: [Action] = []
        if rejoins(worker) {
            // A worker we had forgotten (expired, or we restarted without it): it joins again.
            members[worker] = Member(lastHeartbeat: now)
            actions += try rebalance(now: now)
        }
        return (renew(worker, progress: progress, eventsPerSecond: eventsPerSecond, now: now), actions)
    }

    /// Whether a heartbeat of `worker` makes it a member again (which rebalances, and so writes).
    public func rejoins(_ worker: String) -> Bool {
        members[worker] == nil && !leaving.contains(worker)
    }

    /// The part of a heartbeat that changes no membership and writes nothing: the member's last
    /// heartbeat, the progress and the leases of the partitions it reports.
    public mutating func renew(_ worker: String, progress: [Progress], eventsPerSecond: Double,
                               now: Int64) -> [(partition: Int, epoch: Int64)] {
        members[worker]?.lastHeartbeat = now
        members[worker]?.eventsPerSecond = eventsPerSecond
        var renewed: [(Int, Int64)] = []
        for p in progress where p.partition >= 0 && p.partition < partitionCount {
            var state = partitions[p.partition]
            if plantedBugs.armed(.coordinatorRenewsLapsedLease), state.owner == nil, state.epoch == p.epoch {
                // Planted bug: a lapsed lease taken back by its late heartbeat (nothing written).
                state.owner = worker
                state.state = .granted
            }
            guard state.owner == worker, state.epoch == p.epoch else { continue }
            if p.committedOffset > state.committedOffset || (p.finished && !state.finished) {
                // A commit went through: the partition and the worker's store work again.
                partitionFailures[p.partition] = nil
                retryAt[p.partition] = nil
                workerFailures[worker] = nil
                quarantinedUntil[worker] = nil
            }
            state.offset = p.offset
            state.committedOffset = max(state.committedOffset, p.committedOffset)
            state.watermark = p.watermark
            state.lag = p.lag
            state.finished = p.finished
            if state.state == .granted {
                state.deadline = now + leaseTTL
                renewed.append((p.partition, p.epoch))
            } else if state.state == .revoking {
                renewed.append((p.partition, p.epoch))  // still its own until released or expired
            }
            partitions[p.partition] = state
        }
        return renewed
    }

    /// The owner checkpointed and stopped the partition. A release nobody asked for (the lease was
    /// not being revoked) means the worker is shutting down: it gets no more partitions.
    public mutating func released(_ worker: String, partition: Int, epoch: Int64, committedOffset: Int64, now: Int64) throws -> [Action] {
        guard partition >= 0, partition < partitionCount, partitions[partition].owner == worker,
              partitions[partition].epoch == epoch else { return [] }
        if partitions[partition].state == .granted {
            members[worker] = nil
            leaving.insert(worker)
        }
        partitions[partition].committedOffset = max(partitions[partition].committedOffset, committedOffset)
        try orphan(partition, now: now)
        return try rebalance(now: now)
    }

    /// The owner was fenced off the partition (its claim or a commit found a newer epoch): it
    /// moves at once, and the worker stays a member.
    public mutating func lost(_ worker: String, partition: Int, epoch: Int64, now: Int64) throws -> [Action] {
        guard partition >= 0, partition < partitionCount, partitions[partition].owner == worker,
              partitions[partition].epoch == epoch else { return [] }
        try orphan(partition, now: now)
        return try rebalance(now: now)
    }

    /// The owner stopped the partition on an error that is not a fencing (its checkpoint store is
    /// unreachable or refuses writes). The partition is granted again only after its backoff, and
    /// not to this worker while it is quarantined: elsewhere if another worker can take it.
    public mutating func failed(_ worker: String, partition: Int, epoch: Int64, now: Int64) throws -> [Action] {
        guard partition >= 0, partition < partitionCount, partitions[partition].owner == worker,
              partitions[partition].epoch == epoch else { return [] }
        let failures = (partitionFailures[partition] ?? 0) + 1
        partitionFailures[partition] = failures
        retryAt[partition] = now + partitionBackoff.delay(failures: failures, using: &random)
        let workerFailed = (workerFailures[worker] ?? 0) + 1
        workerFailures[worker] = workerFailed
        quarantinedUntil[worker] = max(quarantinedUntil[worker] ?? now, now + workerBackoff.delay(failures: workerFailed, using: &random))
        try orphan(partition, now: now)
        return try rebalance(now: now)
    }

    /// A graceful leave: the worker released what it could and goes.
    public mutating func leave(_ worker: String, now: Int64) throws -> [Action] {
        members[worker] = nil
        for p in 0..<partitionCount where partitions[p].owner == worker { try orphan(p, now: now) }
        return try rebalance(now: now)
    }

    /// Expires silent workers and lapsed leases, then reassigns.
    public mutating func tick(now: Int64) throws -> [Action] {
        var changed = false
        for (worker, member) in members where now - member.lastHeartbeat > leaseTTL {
            members[worker] = nil
            changed = true
        }
        for p in 0..<partitionCount where partitions[p].owner != nil && partitions[p].deadline < now {
            // The partition has had no live owner since its last renewal.
            lapsed.append((p, partitions[p].owner ?? "", partitions[p].epoch))
            try orphan(p, now: partitions[p].deadline - leaseTTL)
            changed = true
        }
        // A backoff or a quarantine that ended may let a partition be granted (or moved back).
        for (p, at) in retryAt where at <= now {
            retryAt[p] = nil
            changed = true
        }
        for (worker, until) in quarantinedUntil where until <= now {
            quarantinedUntil[worker] = nil
            changed = true
        }
        return changed ? try rebalance(now: now) : []
    }

    /// A change's grants and revocations leave only once its durable write is done, which may be
    /// long after the change was decided (a slow store): their leases run from `now`, when they
    /// leave, so that a grant does not arrive already lapsed.
    public mutating func sent(_ actions: [Action], now: Int64) {
        for action in actions {
            switch action {
            case let .grant(worker, p, epoch), let .revoke(worker, p, epoch):
                guard p >= 0, p < partitionCount, partitions[p].owner == worker, partitions[p].epoch == epoch else { continue }
                partitions[p].deadline = max(partitions[p].deadline, now + leaseTTL)
            }
        }
    }

    // MARK: decisions

    private mutating func orphan(_ partition: Int, now: Int64) throws {
        partitions[partition].owner = nil
        partitions[partition].state = .unassigned
        partitions[partition].orphanedAt = partitions[partition].orphanedAt ?? now
        try ledger.save(partition: partition, epoch: partitions[partition].epoch, owner: nil)
    }

    /// Moves the assignment toward the balanced target: grants unowned partitions, revokes the
    /// ones that should move (their grant follows the release). A partition backing off after a
    /// failure waits; one whose target worker is quarantined goes to the least loaded healthy
    /// worker instead, or waits if there is none; nothing is moved toward a quarantined worker.
    private mutating func rebalance(now: Int64) throws -> [Action] {
        let current = Dictionary(uniqueKeysWithValues: partitions.enumerated().compactMap { p, s in s.owner.map { (p, $0) } })
        let target = Assignment.balance(partitions: partitionCount, workers: Array(members.keys), current: current)
        let quarantined = Set(quarantinedUntil.filter { $0.value > now }.keys)
        var load: [String: Int] = [:]
        for owner in current.values { load[owner, default: 0] += 1 }
        let healthy = members.keys.filter { !quarantined.contains($0) }.sorted()
        var actions: [Action] = []
        for p in 0..<partitionCount {
            guard var want = target[p] else { continue }
            let state = partitions[p]
            if state.owner == nil {
                if let at = retryAt[p], at > now { continue }
                if quarantined.contains(want) {
                    guard let other = healthy.min(by: { (load[$0] ?? 0, $0) < (load[$1] ?? 0, $1) }) else { continue }
                    want = other
                }
                load[want, default: 0] += 1
                let epoch = state.epoch + 1
                try ledger.save(partition: p, epoch: epoch, owner: want)
                partitions[p].epoch = epoch
                partitions[p].owner = want
                partitions[p].state = .granted
                partitions[p].deadline = now + leaseTTL
                if let since = state.orphanedAt { recoveries.append((p, now - since)) }
                partitions[p].orphanedAt = nil
                actions.append(.grant(worker: want, partition: p, epoch: epoch))
            } else if let owner = state.owner, owner != want, state.state == .granted, !quarantined.contains(want) {
                partitions[p].state = .revoking
                actions.append(.revoke(worker: owner, partition: p, epoch: state.epoch))
                if plantedBugs.armed(.grantBeforeRelease) {
                    // Planted bug: the new owner is granted at once, not after the release.
                    let epoch = state.epoch + 1
                    try ledger.save(partition: p, epoch: epoch, owner: want)
                    partitions[p].epoch = epoch
                    partitions[p].owner = want
                    partitions[p].state = .granted
                    partitions[p].deadline = now + leaseTTL
                    actions.append(.grant(worker: want, partition: p, epoch: epoch))
                }
            }
        }
        return actions
    }
}
