import Foundation
import Logging
import Synchronization

/// Which of the coordinators sharing a store leads: one lease row with a holder (its name and its
/// process instance), an epoch that only grows, and an expiry. The leader renews it; a follower
/// takes it once it has expired, or at once when the holder is its own same-named predecessor
/// whose process is gone (a restart; see `LeaderCandidate`). The lease is held by instance, not by
/// name: a live coordinator is never deposed by a namesake. Every ledger write of the leader checks
/// the epoch in the same transaction, so a deposed leader (paused, cut off) can change nothing
/// durable; partition epochs still fence the workers' commits whatever the coordinators do.
/// An actor on an executor of its own: its calls block (SQLite, libpq).
public protocol LeadershipStore: Actor {
    /// The new leader epoch if `candidate` now leads, nil if another instance holds a live lease.
    func tryAcquire(candidate: LeaderCandidate, ttlMs: Int64) throws -> Int64?
    /// Extends the lease; false when another instance has taken it.
    func renew(candidate: LeaderCandidate, epoch: Int64, ttlMs: Int64) throws -> Bool
    /// Gives the lease up at once (a graceful stop), so a follower need not wait for it to expire.
    func resign(candidate: LeaderCandidate, epoch: Int64) throws
    /// The current holder's name, for logs.
    func holder() throws -> (candidate: String, epoch: Int64)?
}

/// A ledger write refused because another coordinator leads now.
public struct NotLeader: Error, CustomStringConvertible {
    public var epoch: Int64
    public var currentEpoch: Int64
    public var description: String {
        "this coordinator (leader epoch \(epoch)) was deposed: leader epoch is now \(currentEpoch)"
    }
    public init(epoch: Int64, currentEpoch: Int64) {
        self.epoch = epoch
        self.currentEpoch = currentEpoch
    }
}

/// Runs the leadership of one coordinator: waits to lead, then keeps the lease renewed. When the
/// lease is lost, or cannot be renewed before it would expire, the coordinator steps down to a
/// follower (its service stops, its sessions end) and waits to lead again.
public final class LeadershipLoop: Sendable {
    public let candidate: LeaderCandidate
    public let ttlMs: Int64
    private let store: any LeadershipStore
    private let logger: Logger
    /// The leader epoch while this candidate leads.
    private let held = Mutex<Int64?>(nil)

    public init(candidate: LeaderCandidate, ttlMs: Int64, store: any LeadershipStore, logger: Logger) {
        self.candidate = candidate
        self.ttlMs = ttlMs
        self.store = store
        var logger = logger
        logger[metadataKey: "coordinator"] = "\(candidate.name)"
        self.logger = logger
    }

    /// Returns the leader epoch once this candidate leads (polling a fifth of the TTL apart).
    public func waitToLead() async throws -> Int64 {
        var announced = false
        while true {
            do {
                if let epoch = try await store.tryAcquire(candidate: candidate, ttlMs: ttlMs) {
                    held.withLock { $0 = epoch }
                    return epoch
                }
                if !announced, let holder = try? await store.holder() {
                    logger.info("follower; \(holder.candidate) leads (leader epoch \(holder.epoch))", metadata: ["leader_epoch": .stringConvertible(holder.epoch)])
                    announced = true
                }
            } catch {
                logger.warning("cannot reach the leadership store (\(error)); retrying")
            }
            try await Task.sleep(for: .milliseconds(max(20, ttlMs / 5)))
        }
    }

    /// Renews every third of the TTL; returns why the leadership is lost (another coordinator took
    /// it, or it could not be renewed before it would expire), or nil when cancelled.
    public func keepLeading(epoch: Int64) async -> String? {
        var renewed = ContinuousClock.now
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(max(10, ttlMs / 3)))
            if Task.isCancelled { return nil }
            do {
                if try await store.renew(candidate: candidate, epoch: epoch, ttlMs: ttlMs) {
                    renewed = .now
                    continue
                }
                held.withLock { $0 = nil }
                return "another coordinator took the leadership"
            } catch {
                // Stop leading before the lease can expire: a follower may take it then.
                if ContinuousClock.now - renewed > .milliseconds(ttlMs * 2 / 3) {
                    held.withLock { $0 = nil }
                    return "the leadership could not be renewed in time (\(error))"
                }
                logger.warning("leadership renewal failed (\(error)); retrying", metadata: ["leader_epoch": .stringConvertible(epoch)])
            }
        }
        return nil
    }

    /// Gives up the lease if this candidate leads (a graceful stop).
    public func resign() async {
        guard let epoch = held.withLock({ $0 }) else { return }
        do {
            try await store.resign(candidate: candidate, epoch: epoch)
            held.withLock { $0 = nil }
            logger.info("resigned the leadership", metadata: ["leader_epoch": .stringConvertible(epoch)])
        } catch {
            logger.warning("could not resign the leadership (\(error)); a follower takes over when the lease expires")
        }
    }
}
