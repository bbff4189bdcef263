import Foundation
import Logging
import SluiceCore

/// The coordinator daemon's state: `CoordinatorCore` behind an actor, one outbound queue per
/// connected worker; `tick()` (driven by the ticker service) expires leases. Speaks plain Swift
/// values; the gRPC layer translates them to and from the wire.
///
/// Durability without blocking: a change of the core (a join, a release, a lapse…) runs on a copy,
/// its saves are written to the `DurableLeaseLedger` (an actor on its own executor, awaited), and
/// only then does the copy become the core and its grants leave. One such write at a time, in
/// order; while it is in flight the actor is free, so heartbeats of healthy workers are answered
/// (they change no membership and write nothing). A heartbeat during a write is applied to both
/// the core and the pending copy, and renews only what both renew, so whichever way the write
/// ends no lease was renewed that the outcome does not have. Ticks are skipped during a write (a
/// stalled store must not make leases lapse that heartbeats keep renewing); the next one after it
/// catches up.
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
    /// The change being written, if any: the core as it will be once the write succeeds.
    private var draft: CoordinatorCore?
    /// The core's ledger: collects the saves of one change.
    private let buffer: LeaseBuffer
    private let ledger: any DurableLeaseLedger
    /// The leader epoch every write is fenced with (nil: a single coordinator's tests).
    private let leaderEpoch: Int64?
    private var sessions: [String: (id: UUID, continuation: AsyncStream<Outbound>.Continuation)] = [:]
    private let started: ContinuousClock.Instant
    private let logger: Logger
    public let leaseTTLMs: Int64
    public let metrics = CoordinatorMetrics()
    private var recoveriesSeen = 0
    private var lapsedSeen = 0

    /// Called when a ledger write finds that another coordinator leads now.
    private let onDeposed: @Sendable (NotLeader) -> Void

    /// One durable change at a time: whether one holds the turn, and who waits for it (in order).
    private var changing = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    /// Set by `stop()`. A stopped service never writes the ledger again: the coordinator that
    /// stepped down shares the ledger with the service it starts when it leads again, and a tick
    /// or a session ending late (`leave`) must not write through the old one. (Found by the chaos
    /// suite on PostgreSQL.) A write already in flight is fenced by its leader epoch.
    private var stopped = false

    /// Loads the durable records (awaiting the ledger's executor) and restores the core.
    public init(partitions: Int, leaseTTLMs: Int64, ledger: any DurableLeaseLedger, leaderEpoch: Int64? = nil,
                logger: Logger, onDeposed: @escaping @Sendable (NotLeader) -> Void = { _ in }) async throws {
        let records = try await ledger.load()
        let buffer = LeaseBuffer(records)
        self.buffer = buffer
        self.onDeposed = onDeposed
        self.leaseTTLMs = leaseTTLMs
        self.logger = logger
        self.ledger = ledger
        self.leaderEpoch = leaderEpoch
        started = ContinuousClock.now
        core = try CoordinatorCore(partitions: partitions, leaseTTL: leaseTTLMs, ledger: buffer, now: 0)
    }

    private var now: Int64 { (ContinuousClock.now - started).milliseconds }

    private func takeTurn() async {
        guard changing else {
            changing = true
            return
        }
        await withCheckedContinuation { waiting.append($0) }  // handed over with `changing` still set
    }

    private func endTurn() {
        if waiting.isEmpty { changing = false } else { waiting.removeFirst().resume() }
    }

    /// Runs a change of the core in turn: on a copy, whose saves are written in one durable write
    /// before the copy becomes the core and the change's actions are delivered. A change that
    /// throws, or whose write fails, changed nothing (its grants are not sent).
    private func change<T>(_ body: (inout CoordinatorCore, _ now: Int64) throws -> (T, [CoordinatorCore.Action])) async throws -> T {
        guard !stopped else { throw ServiceStopped() }
        await takeTurn()
        defer { endTurn() }
        guard !stopped else { throw ServiceStopped() }
        var next = core
        let result: T
        let actions: [CoordinatorCore.Action]
        do {
            (result, actions) = try body(&next, now)
        } catch {
            buffer.discard()
            throw error
        }
        let saves = buffer.take()
        if !saves.isEmpty {
            draft = next
            do {
                try await ledger.write(saves, leaderEpoch: leaderEpoch)
            } catch {
                draft = nil
                if let deposed = error as? NotLeader { onDeposed(deposed) }
                throw error
            }
            // Heartbeats that came meanwhile were applied to the draft too.
            if let written = draft { next = written }
            draft = nil
            next.sent(actions, now: now)
        }
        core = next
        deliver(actions)
        return result
    }

    /// Ends the service: no call changes anything from now on, every session's queue ends.
    public func stop() {
        stopped = true
        for (_, s) in sessions { s.continuation.finish() }
        sessions = [:]
    }

    /// Expires silent workers and lapsed leases. Skipped while a change is being written (see the
    /// type's comment); called every 200 ms by the ticker service.
    public func tick() async {
        guard !stopped, !changing else { return }
        do {
            try await change { core, now in ((), try core.tick(now: now)) }
        } catch is ServiceStopped {
            return
        } catch {
            logger.error("tick failed: \(error)")
        }
        for lapse in core.lapsed.dropFirst(lapsedSeen) {
            metrics.expirations.increment()
            logger.warning("lease of partition \(lapse.partition) (\(lapse.owner), epoch \(lapse.epoch)) lapsed: no renewal for \(leaseTTLMs) ms",
                           metadata: ["partition": .stringConvertible(lapse.partition), "worker": "\(lapse.owner)", "epoch": .stringConvertible(lapse.epoch)])
        }
        lapsedSeen = core.lapsed.count
    }

    /// A worker announces itself. It becomes a member (and gets partitions) when its session opens,
    /// so that no grant is ever sent where nobody listens.
    public func join(_ worker: String) throws {
        guard !stopped else { throw ServiceStopped() }
        logger.info("\(worker) joined", metadata: ["worker": "\(worker)"])
    }

    /// The worker's session: the messages to send it. A new session replaces an older one. The
    /// worker becomes a member (a rebalance may grant it partitions), and what it already owns is
    /// granted again (idempotent for the same epoch), or revoked again if a revocation is pending.
    public func openSession(_ worker: String) async throws -> (id: UUID, stream: AsyncStream<Outbound>) {
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
        do {
            try await change { core, now in ((), try core.join(worker, now: now)) }
        } catch {
            closeSession(worker, id: id)
            throw error
        }
        return (id, stream)
    }

    public func closeSession(_ worker: String, id: UUID) {
        guard sessions[worker]?.id == id else { return }
        sessions[worker]?.continuation.finish()
        sessions[worker] = nil
    }

    /// A graceful leave after the worker released its partitions.
    public func leave(_ worker: String) async {
        guard !stopped else { return }
        logger.info("\(worker) left", metadata: ["worker": "\(worker)"])
        do {
            try await change { core, now in ((), try core.leave(worker, now: now)) }
        } catch is ServiceStopped {
        } catch {
            logger.error("leave failed: \(error)", metadata: ["worker": "\(worker)"])
        }
    }

    public func handle(_ worker: String, _ message: Inbound) async throws {
        guard !stopped else { throw ServiceStopped() }
        switch message {
        case .released(let partition, let epoch, let committedOffset):
            logger.info("\(worker) released partition \(partition) (epoch \(epoch)) at offset \(committedOffset)",
                        metadata: ["worker": "\(worker)", "partition": .stringConvertible(partition), "epoch": .stringConvertible(epoch)])
            try await change { core, now in
                ((), try core.released(worker, partition: partition, epoch: epoch, committedOffset: committedOffset, now: now))
            }
        case .fenced(let partition, let epoch):
            logger.warning("\(worker) was fenced off partition \(partition) (epoch \(epoch))",
                           metadata: ["worker": "\(worker)", "partition": .stringConvertible(partition), "epoch": .stringConvertible(epoch)])
            metrics.fenced.increment()
            try await change { core, now in ((), try core.lost(worker, partition: partition, epoch: epoch, now: now)) }
        case .failed(let partition, let epoch, let reason):
            metrics.failures.increment()
            let at = try await change { core, now in (now, try core.failed(worker, partition: partition, epoch: epoch, now: now)) }
            let retry = core.retryAt[partition].map { " granted again in \($0 - at) ms at the earliest;" } ?? ""
            let quarantine = core.quarantinedUntil[worker].map { " \(worker) gets no partition for \($0 - at) ms" } ?? ""
            logger.warning("\(worker) failed partition \(partition) (epoch \(epoch)): \(reason);\(retry)\(quarantine)",
                           metadata: ["worker": "\(worker)", "partition": .stringConvertible(partition), "epoch": .stringConvertible(epoch)])
        }
    }

    /// A heartbeat: returns the leases it renewed, for the caller to answer with at once (the
    /// session handler writes the renewal itself, sparing each heartbeat a trip through the
    /// session's outbound queue); grants or revocations it causes go through that queue. Only a
    /// heartbeat that makes its worker a member again waits for a durable write (it rebalances).
    public func renew(_ worker: String, progress: [CoordinatorCore.Progress],
                      eventsPerSecond: Double) async throws -> [(partition: Int, epoch: Int64)] {
        guard !stopped else { throw ServiceStopped() }
        metrics.heartbeats.increment()
        let t = now
        if let member = core.members[worker], t - member.lastHeartbeat > leaseTTLMs / 2 {
            logger.warning("heartbeat from \(worker) after \(t - member.lastHeartbeat) ms of silence", metadata: ["worker": "\(worker)"])
        }
        if core.rejoins(worker) {
            return try await change { core, now in
                let (renewed, actions) = try core.heartbeat(worker, progress: progress, eventsPerSecond: eventsPerSecond, now: now)
                return (renewed, actions)
            }
        }
        var renewed = core.renew(worker, progress: progress, eventsPerSecond: eventsPerSecond, now: t)
        if var pending = draft {
            let alsoRenewed = pending.renew(worker, progress: progress, eventsPerSecond: eventsPerSecond, now: t)
            draft = pending
            renewed = renewed.filter { r in alsoRenewed.contains { $0.partition == r.partition && $0.epoch == r.epoch } }
        }
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
                logger.info("grant partition \(partition) to \(worker) (epoch \(epoch))", metadata: ["worker": "\(worker)", "partition": .stringConvertible(partition), "epoch": .stringConvertible(epoch)])
                sessions[worker]?.continuation.yield(.grant(partition: partition, epoch: epoch, ttlMs: leaseTTLMs))
            case let .revoke(worker, partition, epoch):
                metrics.revocations.increment()
                logger.info("revoke partition \(partition) from \(worker) (epoch \(epoch))", metadata: ["worker": "\(worker)", "partition": .stringConvertible(partition), "epoch": .stringConvertible(epoch)])
                sessions[worker]?.continuation.yield(.revoke(partition: partition, epoch: epoch))
            }
        }
        for recovery in core.recoveries.dropFirst(recoveriesSeen) {
            metrics.recovery.recordMilliseconds(recovery.ms)
        }
        recoveriesSeen = core.recoveries.count
        metrics.workers.record(core.members.count)
        metrics.unassigned.record(core.partitions.count { $0.owner == nil })
        metrics.leader.record(1)
    }
}

/// A call reached a coordinator service that has stopped (it stepped down): nothing was done.
public struct ServiceStopped: Error, CustomStringConvertible {
    public var description: String { "this coordinator stepped down; try the leader" }
}
