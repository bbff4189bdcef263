import SluiceCore
import SluiceCoordinator
import SluiceWorkload
import Testing

/// A worker whose checkpoint store is down fails every partition it is granted. Before `failed`
/// existed the worker reported that as `fenced`, the coordinator granted the partition straight
/// back, and the cycle ran ~120 times a second per partition (chaos/README.md, "Found by the
/// harness"). These drive the core through simulated time, answering every grant to the sick
/// worker with a failure 5 ms later, and count the grants.
@Suite struct BackoffTests {
    @Test func theBackoffGrowsToItsCapWithJitterBetweenHalfAndAll() {
        let backoff = Backoff(baseMs: 250, capMs: 4_000)
        #expect((1...8).map { backoff.step(failures: $0) } == [250, 500, 1_000, 2_000, 4_000, 4_000, 4_000, 4_000])
        #expect(backoff.step(failures: 1_000) == 4_000)
        var random = SplitMix64(seed: 3)
        for failures in 1...8 {
            let step = backoff.step(failures: failures)
            let delays = (0..<200).map { _ in backoff.delay(failures: failures, using: &random) }
            #expect(delays.allSatisfy { $0 >= step / 2 && $0 <= step })
            #expect(Set(delays).count > 20)  // jittered, not one value
        }
    }

    /// The simulated cluster: `sick` workers fail every grant after 5 ms; healthy ones commit
    /// (their heartbeats report a growing committed offset) and answer a revocation with a release.
    struct Simulation {
        var core: CoordinatorCore
        var sick: Set<String>
        var grants: [(t: Int64, worker: String, partition: Int)] = []
        var failures = 0
        private var pending: [CoordinatorCore.Action] = []
        private var answers: [(at: Int64, worker: String, partition: Int, epoch: Int64, release: Bool)] = []
        private var committed: [Int: Int64] = [:]

        init(partitions: Int, workers: [String], sick: Set<String>) throws {
            core = try CoordinatorCore(partitions: partitions, leaseTTL: 6_000, ledger: MemoryLedger(), now: 0)
            self.sick = sick
            for w in workers { pending += try core.join(w, now: 0) }
        }

        /// Runs from `from` to `to` ms in 5 ms steps (bounded by the range).
        mutating func run(from: Int64, to: Int64) throws {
            for t in stride(from: from, to: to, by: 5) {
                let actions = pending
                pending = []
                for action in actions {
                    switch action {
                    case let .grant(w, p, e):
                        grants.append((t, w, p))
                        if sick.contains(w) { answers.append((t + 5, w, p, e, false)) }
                    case let .revoke(w, p, e):
                        answers.append((t + 5, w, p, e, true))
                    }
                }
                for a in answers where a.at <= t {
                    if a.release {
                        pending += try core.released(a.worker, partition: a.partition, epoch: a.epoch,
                                                     committedOffset: committed[a.partition] ?? 0, now: t)
                    } else if sick.contains(a.worker) {
                        failures += 1
                        pending += try core.failed(a.worker, partition: a.partition, epoch: a.epoch, now: t)
                    }
                }
                answers.removeAll { $0.at <= t }
                if t % 1_000 == 0 {
                    for worker in core.members.keys.sorted() {
                        let held = core.partitions.enumerated().filter { $0.element.owner == worker }
                        let progress = held.map { p, s -> CoordinatorCore.Progress in
                            if !sick.contains(worker) { committed[p, default: 0] += 100 }  // it commits
                            return .init(partition: p, epoch: s.epoch, offset: committed[p] ?? 0, committedOffset: committed[p] ?? 0,
                                         watermark: 0, lag: 0, finished: false)
                        }
                        pending += try core.heartbeat(worker, progress: progress, eventsPerSecond: 1, now: t).actions
                    }
                }
                if t % 200 == 0 { pending += try core.tick(now: t) }
            }
        }

        func grantCount(from: Int64, to: Int64, worker: String? = nil) -> Int {
            grants.count { $0.t >= from && $0.t < to && (worker == nil || $0.worker == worker) }
        }
    }

    @Test func aLoneWorkerWithItsStoreCutOffIsGrantedAFewTimesAMinuteNotThousands() throws {
        var sim = try Simulation(partitions: 4, workers: ["a"], sick: ["a"])
        try sim.run(from: 0, to: 60_000)
        // Without backoff: a grant every ~10 ms per partition, about 24,000 in the minute. With it:
        // the worker's quarantine (1, 2, 4, 8 s, jittered) sets the pace, 4 grants per round.
        let grants = sim.grantCount(from: 0, to: 60_000)
        #expect(grants <= 80, "\(grants) grants in 60 s with the store cut off")
        #expect(grants >= 12, "the partitions are still retried: \(grants) grants")
        #expect(sim.grantCount(from: 30_000, to: 60_000) <= 40)
        // Never regranted sooner than the partition's own backoff floor (125 ms) after a failure.
        for p in 0..<4 {
            let times = sim.grants.filter { $0.partition == p }.map(\.t)
            #expect(zip(times, times.dropFirst()).allSatisfy { $1 - $0 >= 125 })
        }
        // The store comes back: within one capped quarantine (8 s) every partition runs again and stays.
        sim.sick = []
        try sim.run(from: 60_000, to: 75_000)
        #expect(sim.core.partitions.allSatisfy { $0.owner == "a" && $0.state == .granted })
        let settled = sim.grantCount(from: 70_000, to: 75_000)
        #expect(settled == 0, "no more grants once it commits again (\(settled))")
        #expect(sim.core.workerFailures.isEmpty && sim.core.partitionFailures.isEmpty)
    }

    @Test func theFailedPartitionsGoToAHealthyWorkerAndTheSickOneIsRetriedRarely() throws {
        var sim = try Simulation(partitions: 4, workers: ["a", "b"], sick: [])
        try sim.run(from: 0, to: 3_000)
        #expect(Set(sim.core.partitions.compactMap(\.owner)) == ["a", "b"])
        let aHeld = sim.core.partitions.indices.filter { sim.core.partitions[$0].owner == "a" }
        #expect(aHeld.count == 2)
        // a's store goes away: its next commits fail (the simulation fails a's partitions now).
        sim.sick = ["a"]
        var actions: [CoordinatorCore.Action] = []
        for p in aHeld { actions += try sim.core.failed("a", partition: p, epoch: sim.core.partitions[p].epoch, now: 3_000) }
        // Both go to b, after the partition backoff (at most 250 ms), not back to a.
        try sim.run(from: 3_005, to: 3_600)
        #expect(sim.core.partitions.allSatisfy { $0.owner == "b" })
        // 30 s of a's store being down: a is tried again only when its quarantine ends.
        try sim.run(from: 3_600, to: 33_600)
        let toA = sim.grantCount(from: 3_000, to: 33_600, worker: "a")
        #expect(toA <= 20, "\(toA) grants to the sick worker in 30 s")
        #expect(sim.grantCount(from: 3_000, to: 33_600) <= 50)
        // Most of the time b runs everything.
        #expect(sim.core.partitions.count { $0.owner == "b" } >= 2)
        // a heals: the balance comes back (2 and 2) within a capped quarantine.
        sim.sick = []
        try sim.run(from: 33_600, to: 45_000)
        #expect(sim.core.partitions.count { $0.owner == "a" } == 2)
        #expect(sim.core.partitions.count { $0.owner == "b" } == 2)
    }

    @Test func aFencingStillMovesThePartitionAtOnce() throws {
        var core = try CoordinatorCore(partitions: 2, leaseTTL: 6_000, ledger: MemoryLedger(), now: 0)
        _ = try core.join("a", now: 0)
        #expect(try core.lost("a", partition: 0, epoch: 1, now: 5) == [.grant(worker: "a", partition: 0, epoch: 2)])
        #expect(core.workerFailures.isEmpty && core.retryAt.isEmpty)
        // A failure does not: nothing is granted until the backoff ends.
        #expect(try core.failed("a", partition: 1, epoch: 1, now: 10).isEmpty)
        #expect(core.retryAt[1] != nil)
        #expect(try core.tick(now: 100).isEmpty)
        let later = try core.tick(now: 3_000)  // after both (≤ 250 ms and ≤ 1 s), within a's lease
        #expect(later == [.grant(worker: "a", partition: 1, epoch: 2)])
    }
}
