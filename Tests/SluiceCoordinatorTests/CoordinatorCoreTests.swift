import Foundation
import SluiceCoordinator
import Testing

final class MemoryLedger: LeaseLedger {
    var records: [Int: (Int64, String?)] = [:]
    func load() throws -> [(partition: Int, epoch: Int64, owner: String?)] {
        records.map { ($0.key, $0.value.0, $0.value.1) }
    }
    func save(partition: Int, epoch: Int64, owner: String?) throws { records[partition] = (epoch, owner) }
    func fence(leaderEpoch: Int64) throws {}
}

@Suite struct CoordinatorCoreTests {
    func grants(_ actions: [CoordinatorCore.Action]) -> [Int: (String, Int64)] {
        var g: [Int: (String, Int64)] = [:]
        for case let .grant(w, p, e) in actions { g[p] = (w, e) }
        return g
    }

    func progress(_ core: CoordinatorCore, _ worker: String) -> [CoordinatorCore.Progress] {
        core.partitions.enumerated().compactMap { p, s in
            s.owner == worker ? .init(partition: p, epoch: s.epoch, offset: 0, committedOffset: 0, watermark: 0, lag: 0, finished: false) : nil
        }
    }

    @Test func joinsGrantEverythingOnceWithGrowingEpochs() throws {
        let ledger = MemoryLedger()
        var core = try CoordinatorCore(partitions: 8, leaseTTL: 6_000, ledger: ledger, now: 0)
        let first = try core.join("a", now: 0)
        #expect(grants(first).count == 8)
        #expect(grants(first).values.allSatisfy { $0.0 == "a" && $0.1 == 1 })
        // b joins: a is asked to give up 4, and b gets them only after each release.
        let second = try core.join("b", now: 10)
        let revoked = second.compactMap { if case let .revoke(w, p, _) = $0 { return w == "a" ? p : nil } else { return nil } }
        #expect(revoked.count == 4)
        #expect(grants(second).isEmpty)
        for p in revoked {
            let after = try core.released("a", partition: p, epoch: 1, committedOffset: 100, now: 20)
            #expect(grants(after)[p]?.0 == "b")
            #expect(grants(after)[p]?.1 == 2)
        }
        #expect(Set(core.partitions.compactMap(\.owner)) == ["a", "b"])
        #expect(ledger.records.values.allSatisfy { $0.1 != nil })
    }

    @Test func aSilentWorkerLosesItsPartitionsAfterTheLease() throws {
        var core = try CoordinatorCore(partitions: 8, leaseTTL: 6_000, ledger: MemoryLedger(), now: 0)
        _ = try core.join("a", now: 0)
        _ = try core.join("b", now: 0)
        for p in 0..<8 where core.partitions[p].state == .revoking {
            _ = try core.released("a", partition: p, epoch: core.partitions[p].epoch, committedOffset: 0, now: 1)
        }
        // b goes silent; a keeps heartbeating.
        for t in stride(from: 2_000, through: 6_000, by: 2_000) {
            _ = try core.heartbeat("a", progress: progress(core, "a"), eventsPerSecond: 1, now: Int64(t))
            #expect(try core.tick(now: Int64(t)).isEmpty)
        }
        _ = try core.heartbeat("a", progress: progress(core, "a"), eventsPerSecond: 1, now: 6_500)
        let moved = try core.tick(now: 6_500)
        #expect(grants(moved).count == 4)
        #expect(grants(moved).values.allSatisfy { $0.0 == "a" && $0.1 == 3 })
        // 4 hand-overs when b joined, then 4 recoveries that waited out b's lease.
        #expect(core.recoveries.count == 8)
        #expect(core.recoveries.suffix(4).allSatisfy { $0.ms >= 6_000 && $0.ms <= 6_500 })
    }

    @Test func renewalRefusesAStaleEpoch() throws {
        var core = try CoordinatorCore(partitions: 2, leaseTTL: 6_000, ledger: MemoryLedger(), now: 0)
        _ = try core.join("a", now: 0)
        let stale = [CoordinatorCore.Progress(partition: 0, epoch: 0, offset: 0, committedOffset: 0, watermark: 0, lag: 0, finished: false)]
        #expect(try core.heartbeat("a", progress: stale, eventsPerSecond: 0, now: 100).renewed.isEmpty)
        let other = [CoordinatorCore.Progress(partition: 1, epoch: 1, offset: 0, committedOffset: 0, watermark: 0, lag: 0, finished: false)]
        #expect(try core.heartbeat("intruder", progress: other, eventsPerSecond: 0, now: 100).renewed.isEmpty)
    }

    @Test func aRestartedCoordinatorKeepsEpochsAndOwners() throws {
        let ledger = MemoryLedger()
        var core = try CoordinatorCore(partitions: 4, leaseTTL: 6_000, ledger: ledger, now: 0)
        _ = try core.join("a", now: 0)
        _ = try core.join("b", now: 0)
        for p in 0..<4 where core.partitions[p].state == .revoking {
            _ = try core.released("a", partition: p, epoch: core.partitions[p].epoch, committedOffset: 0, now: 1)
        }
        let before = core.partitions.map { ($0.owner, $0.epoch) }
        var restarted = try CoordinatorCore(partitions: 4, leaseTTL: 6_000, ledger: ledger, now: 50_000)
        #expect(restarted.partitions.map { ($0.owner, $0.epoch) }.elementsEqual(before) { $0 == $1 })
        // The owners renew within the lease: nothing moves, no epoch is reused.
        let renewed = try restarted.heartbeat("a", progress: progress(restarted, "a"), eventsPerSecond: 0, now: 51_000)
        #expect(renewed.renewed.count == 2)
        #expect(renewed.actions.isEmpty)
        _ = try restarted.heartbeat("b", progress: progress(restarted, "b"), eventsPerSecond: 0, now: 51_000)
        #expect(try restarted.tick(now: 55_000).isEmpty)
        // b never comes back: its partitions move with higher epochs.
        _ = try restarted.heartbeat("a", progress: progress(restarted, "a"), eventsPerSecond: 0, now: 57_500)
        let moved = grants(try restarted.tick(now: 57_500))
        #expect(moved.count == 2)
        for (p, grant) in moved { #expect(grant.1 == before[p].1 + 1) }
    }
}

@Suite struct CoordinatorLeaveTests {
    @Test func anUnaskedReleaseMeansTheWorkerIsLeaving() throws {
        var core = try CoordinatorCore(partitions: 4, leaseTTL: 6_000, ledger: MemoryLedger(), now: 0)
        _ = try core.join("a", now: 0)
        _ = try core.join("b", now: 0)
        for p in 0..<4 where core.partitions[p].state == .revoking {
            _ = try core.released("a", partition: p, epoch: core.partitions[p].epoch, committedOffset: 0, now: 1)
        }
        // b shuts down: it releases its partitions unasked; they all go to a, none back to b.
        let bs = (0..<4).filter { core.partitions[$0].owner == "b" }
        var regranted: [String] = []
        for p in bs {
            for case let .grant(w, _, _) in try core.released("b", partition: p, epoch: core.partitions[p].epoch, committedOffset: 5, now: 2) {
                regranted.append(w)
            }
        }
        #expect(regranted == Array(repeating: "a", count: bs.count))
        // A late heartbeat from b does not make it a member again.
        let late = try core.heartbeat("b", progress: [], eventsPerSecond: 0, now: 3)
        #expect(late.actions.isEmpty)
        #expect(core.members["b"] == nil)
        // Rejoining does.
        _ = try core.join("b", now: 4)
        #expect(core.members["b"] != nil)
    }

    @Test func aLostPartitionMovesButTheWorkerStays() throws {
        var core = try CoordinatorCore(partitions: 2, leaseTTL: 6_000, ledger: MemoryLedger(), now: 0)
        _ = try core.join("a", now: 0)
        let actions = try core.lost("a", partition: 0, epoch: 1, now: 5)
        #expect(actions == [.grant(worker: "a", partition: 0, epoch: 2)])
        #expect(core.members["a"] != nil)
    }
}
