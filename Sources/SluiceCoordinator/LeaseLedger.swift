/// Where the coordinator keeps each partition's epoch and owner durably, in two halves:
/// - `LeaseLedger`: what `CoordinatorCore` (pure, synchronous) reads at start and saves into;
///   the service hands it a `LeaseBuffer`, which only collects the saves of one change;
/// - `DurableLeaseLedger`: the store (SQLite or PostgreSQL), an actor on an executor of its own,
///   which `CoordinatorService` awaits with the collected saves. A slow or stalled store then
///   occupies its own thread, never the cooperative pool, and heartbeats go on being answered.

/// One partition's durable record.
public struct LeaseRecord: Sendable, Equatable {
    public var partition: Int
    public var epoch: Int64
    public var owner: String?

    public init(partition: Int, epoch: Int64, owner: String?) {
        self.partition = partition
        self.epoch = epoch
        self.owner = owner
    }
}

/// What `CoordinatorCore` needs: the records at start, and a place for its saves.
public protocol LeaseLedger {
    func load() throws -> [(partition: Int, epoch: Int64, owner: String?)]
    func save(partition: Int, epoch: Int64, owner: String?) throws
}

/// The durable store of the records. Every write is one transaction: all records or none.
public protocol DurableLeaseLedger: Actor {
    func load() throws -> [LeaseRecord]
    /// Writes `records` in one transaction, refused with `NotLeader` (writing nothing) unless
    /// `leaderEpoch` is still the current leader epoch, checked in the same transaction (nil: no
    /// check, a single coordinator's tests). The epoch comes with each write, not set once on the
    /// ledger: a late write of a service that stepped down is then refused even after the same
    /// coordinator leads again with a newer epoch. Idempotent (upserts): a retry is harmless.
    func write(_ records: [LeaseRecord], leaderEpoch: Int64?) throws
}

/// The core's ledger inside `CoordinatorService`: the records loaded at start, and the saves of
/// the change under way, which the service takes and writes durably before any of the change's
/// grants leave. Used only on the service's actor (it is not Sendable).
final class LeaseBuffer: LeaseLedger {
    private let initial: [LeaseRecord]
    private var pending: [LeaseRecord] = []

    init(_ initial: [LeaseRecord]) { self.initial = initial }

    func load() throws -> [(partition: Int, epoch: Int64, owner: String?)] {
        initial.map { ($0.partition, $0.epoch, $0.owner) }
    }

    func save(partition: Int, epoch: Int64, owner: String?) throws {
        pending.append(LeaseRecord(partition: partition, epoch: epoch, owner: owner))
    }

    /// The saves since the last call, the last one per partition (in partition order).
    func take() -> [LeaseRecord] {
        var last: [Int: LeaseRecord] = [:]
        for record in pending { last[record.partition] = record }
        pending = []
        return last.keys.sorted().compactMap { last[$0] }
    }

    /// Drops the saves of a change that threw before it finished.
    func discard() { pending = [] }
}
