import Foundation
import SluiceCore

/// The coordinator daemon's state: `CoordinatorCore` behind an actor, one outbound queue per
/// connected worker, and a ticker that expires leases. Speaks plain Swift values; the gRPC layer
/// translates them to and from the wire.
public actor CoordinatorService {
    public enum Outbound: Sendable, Equatable {
        case grant(partition: Int, epoch: Int64, ttlMs: Int64)
        case revoke(partition: Int, epoch: Int64)
        case renewal([(partition: Int, epoch: Int64)])

        public static func == (a: Outbound, b: Outbound) -> Bool {
            switch (a, b) {
            case let (.grant(p1, e1, t1), .grant(p2, e2, t2)): return p1 == p2 && e1 == e2 && t1 == t2
            case let (.revoke(p1, e1), .revoke(p2, e2)): return p1 == p2 && e1 == e2
            case let (.renewal(l1), .renewal(l2)): return l1.elementsEqual(l2) { $0 == $1 }
            default: return false
            }
        }
    }

    /// What a worker says besides heartbeats (which `renew` answers).
    public enum Inbound: Sendable {
        case released(partition: Int, epoch: Int64, committedOffset: Int64)
        case fenced(partition: Int, epoch: Int64)
        /// The partition stopped on an error that is not a fencing (see `CoordinatorCore.failed`).
        case failed(partition: Int, epoch: Int64, reason: String)
    }

    public struct Snapshot: Sendable {
        public var partitions: [CoordinatorCore.PartitionState]
        public var workers: [(id: String, partitions: [Int], eventsPerSecond: Double, lastHeartbeatMsAgo: Int64)]
        public var recoveries: [(partition: Int, ms: Int64)]
    }

    private var core: CoordinatorCore
    private let ledger: any LeaseLedger & Sendable
    private var sessions: [String: (id: UUID, continuation: AsyncStream<Outbound>.Continuation)] = [:]
    private let started = ContinuousClock.now
    private let log: @Sendable (String) -> Void
    public let leaseTTLMs: Int64
    private var ticker: Task<Void, Never>?
    public let metrics = CoordinatorMetrics()

    /// Called when a ledger write finds that another coordinator leads now.
    private let onDeposed: @Sendable (NotLeader) -> Void

    public init(partitions: Int, leaseTTLMs: Int64, ledger: any LeaseLedger & Sendable,
                log: @escaping @Sendable (String) -> Void, onDeposed: @escaping @Sendable (NotLeader) -> Void = { _ in }) throws {
        self.onDeposed = onDeposed
        self.leaseTTLMs = leaseTTLMs
        self.log = log
        self.ledger = ledger
        core = try CoordinatorCore(partitions: partitions, leaseTTL: leaseTTLMs, ledger: ledger, now: 0)
    }

    private var now: Int64 { (ContinuousClock.now - started).milliseconds }

    /// Set by `stop()`. A stopped service never touches the ledger again: the coordinator that
    /// stepped down shares the ledger (one connection, not thread-safe) with the service it starts
    /// when it leads again, and a tick already queued on this actor, or a session ending late
    /// (`leave`), would otherwise write through it at the same time. (Found by the chaos suite on
    /// PostgreSQL: after a server restart, a late tick of the old service and the new one desynced
    /// the ledger's connection and the coordinator hung.)
    private var stopped = false

    /// Runs a change of the core with all its ledger saves in one durable write.
    private func durably(_ change: (inout CoordinatorCore) throws -> [CoordinatorCore.Action]) throws -> [CoordinatorCore.Action] {
        guard !stopped else { throw ServiceStopped() }
        var actions: [CoordinatorCore.Action] = []
        let before = core
        do {
            try ledger.batch { actions = try change(&core) }
        } catch {
            // Nothing was written, so nothing happened: forget the change (its grants are not sent).
            core = before
            if let deposed = error as? NotLeader { onDeposed(deposed) }
            throw error
        }
        return actions
    }

    /// Expires leases every `intervalMs` until `stop()`.
    public func startTicker(intervalMs: Int = 200) {
        ticker = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(intervalMs))
                await self?.tick()
            }
        }
    }

    public func stop() {
        stopped = true
        ticker?.cancel()
        for (_, s) in sessions { s.continuation.finish() }
        sessions = [:]
    }

    private var lapsedSeen = 0

    private func tick() {
        guard !stopped else { return }
        do {
            let actions = try durably { try $0.tick(now: now) }
            for lapse in core.lapsed.dropFirst(lapsedSeen) {
                metrics.expirations.increment()
                log("coordinator: lease of partition \(lapse.partition) (\(lapse.owner), epoch \(lapse.epoch)) lapsed: no renewal for \(leaseTTLMs) ms")
            }
            lapsedSeen = core.lapsed.count
            deliver(actions)
        } catch {
            log("coordinator: tick failed: \(error)")
        }
    }

    /// A worker announces itself. It becomes a member (and gets partitions) when its session opens,
    /// so that no grant is ever sent where nobody listens.
    public func join(_ worker: String) throws {
        log("coordinator: \(worker) joined")
    }

    /// The worker's session: the messages to send it. A new session replaces an older one. The
    /// worker becomes a member (a rebalance may grant it partitions), and what it already owns is
    /// granted again (idempotent for the same epoch), or revoked again if a revocation is pending.
    public func openSession(_ worker: String) throws -> (id: UUID, stream: AsyncStream<Outbound>) {
        guard !stopped else { throw ServiceStopped() }
        let (stream, continuation) = AsyncStream.makeStream(of: Outbound.self)
        sessions[worker]?.continuation.finish()
        let id = UUID()
        sessions[worker] = (id, continuation)
        let owned = core.partitions.enumerated().filter { $0.element.owner == worker }
        for (p, state) in owned {
            continuation.yield(.grant(partition: p, epoch: state.epoch, ttlMs: leaseTTLMs))
            if state.state == .revoking { continuation.yield(.revoke(partition: p, epoch: state.epoch)) }
        }
        deliver(try durably { try $0.join(worker, now: now) })
        return (id, stream)
    }

    public func closeSession(_ worker: String, id: UUID) {
        guard sessions[worker]?.id == id else { return }
        sessions[worker]?.continuation.finish()
        sessions[worker] = nil
    }

    /// A graceful leave after the worker released its partitions.
    public func leave(_ worker: String) {
        guard !stopped else { return }
        log("coordinator: \(worker) left")
        do { deliver(try durably { try $0.leave(worker, now: now) }) } catch { log("coordinator: leave failed: \(error)") }
    }

    public func handle(_ worker: String, _ message: Inbound) throws {
        guard !stopped else { throw ServiceStopped() }
        switch message {
        case .released(let partition, let epoch, let committedOffset):
            log("coordinator: \(worker) released partition \(partition) (epoch \(epoch)) at offset \(committedOffset)")
            deliver(try durably { try $0.released(worker, partition: partition, epoch: epoch, committedOffset: committedOffset, now: now) })
        case .fenced(let partition, let epoch):
            log("coordinator: \(worker) was fenced off partition \(partition) (epoch \(epoch))")
            metrics.fenced.increment()
            deliver(try durably { try $0.lost(worker, partition: partition, epoch: epoch, now: now) })
        case .failed(let partition, let epoch, let reason):
            metrics.failures.increment()
            let at = now
            let actions = try durably { try $0.failed(worker, partition: partition, epoch: epoch, now: at) }
            let retry = core.retryAt[partition].map { " granted again in \($0 - at) ms at the earliest;" } ?? ""
            let quarantine = core.quarantinedUntil[worker].map { " \(worker) gets no partition for \($0 - at) ms" } ?? ""
            log("coordinator: \(worker) failed partition \(partition) (epoch \(epoch)): \(reason);\(retry)\(quarantine)")
            deliver(actions)
        }
    }

    /// A heartbeat: returns the leases it renewed, for the caller to answer with at once (the
    /// session handler writes the renewal itself, sparing each heartbeat a trip through the
    /// session's outbound queue); grants or revocations it causes go through that queue.
    public func renew(_ worker: String, progress: [CoordinatorCore.Progress],
                      eventsPerSecond: Double) throws -> [(partition: Int, epoch: Int64)] {
        guard !stopped else { throw ServiceStopped() }  // a rejoin rebalances, which writes
        metrics.heartbeats.increment()
        if let member = core.members[worker], now - member.lastHeartbeat > leaseTTLMs / 2 {
            log("coordinator: heartbeat from \(worker) after \(now - member.lastHeartbeat) ms of silence")
        }
        let (renewed, actions) = try core.heartbeat(worker, progress: progress, eventsPerSecond: eventsPerSecond, now: now)
        if !actions.isEmpty { deliver(actions) }
        return renewed
    }

    public func snapshot() -> Snapshot {
        let t = now
        var held: [String: [Int]] = [:]
        for (p, s) in core.partitions.enumerated() { if let o = s.owner { held[o, default: []].append(p) } }
        let workers = core.members.map { id, m in (id, held[id] ?? [], m.eventsPerSecond, t - m.lastHeartbeat) }
            .sorted { $0.0 < $1.0 }
        return Snapshot(partitions: core.partitions, workers: workers, recoveries: core.recoveries)
    }

    private func deliver(_ actions: [CoordinatorCore.Action]) {
        for action in actions {
            switch action {
            case let .grant(worker, partition, epoch):
                metrics.grants.increment()
                log("coordinator: grant partition \(partition) to \(worker) (epoch \(epoch))")
                sessions[worker]?.continuation.yield(.grant(partition: partition, epoch: epoch, ttlMs: leaseTTLMs))
            case let .revoke(worker, partition, epoch):
                metrics.revocations.increment()
                log("coordinator: revoke partition \(partition) from \(worker) (epoch \(epoch))")
                sessions[worker]?.continuation.yield(.revoke(partition: partition, epoch: epoch))
            }
        }
        for recovery in core.recoveries.dropFirst(metrics.recoveriesSeen) {
            metrics.recovery.recordMilliseconds(recovery.ms)
        }
        metrics.recoveriesSeen = core.recoveries.count
        metrics.workers.record(core.members.count)
        metrics.unassigned.record(core.partitions.count { $0.owner == nil })
        metrics.leader.record(1)
    }
}

/// A call reached a coordinator service that has stopped (it stepped down): nothing was done.
public struct ServiceStopped: Error, CustomStringConvertible {
    public var description: String { "this coordinator stepped down; try the leader" }
}
