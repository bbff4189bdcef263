// The cluster end to end: a real coordinator and real worker processes over mutual TLS, sharing
// one SQLite sink. Faults are injected with signals (SIGKILL a worker, SIGKILL the coordinator and
// restart it, SIGSTOP/SIGCONT a worker past its lease) and every run must still match the oracle.

import Foundation
import SluiceStorage
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension SluiceEndToEndTests {
    /// The cluster tests, nested in the serialized end-to-end suite so that they never run
    /// alongside the other CPU-heavy end-to-end tests (their timings matter).
    @Suite struct ClusterTests {
        /// The input of the full runs: 1,000,000 events in 8 partitions (the same files as the
        /// corrupt-checkpoint test, so a full run of the suite generates them once).
        static let workload = (seed: UInt64(4_242), events: 1_000_000, partitions: 8)

        /// Events per second per partition: a partition of 125,000 events takes ~16 s, and 3
        /// workers need ~64,000 events/s, about half of what debug builds manage on 2 cores. (As
        /// written, a worker reads a file partition in 1 MiB blocks, ~33,800 events, and paces
        /// whole blocks: progress and commits come in steps of ~4 s, and a revoked partition may
        /// sleep that long before it sees the revocation — the tests do not depend on either.)
        static let rate = 8_000

        static func input() async throws -> String {
            try await GeneratedInputs.shared.directory(seed: workload.seed, events: workload.events, partitions: workload.partitions)
        }

        /// Three workers holding 3/3/2 partitions, every lease granted.
        static func startThreeWorkers(_ cluster: Cluster, rate: Int = rate, metrics: Bool = false) async throws -> ClusterStatus {
            for i in 1...3 { try cluster.startWorker("worker-\(i)", rate: rate, metrics: metrics) }
            return try await cluster.waitForStatus("3 workers hold 3/3/2 partitions", timeout: .seconds(60)) {
                $0.settled && $0.heldCounts.values.sorted() == [2, 3, 3]
            }
        }

        // MARK: 1. A worker is SIGKILLed

        @Test("Cluster: SIGKILL a worker mid-run; its partitions move within the lease TTL + 2 s; the result is exact",
              .timeLimit(.minutes(5)))
        func workerKilled() async throws {
            let began = ContinuousClock.now
            let cluster = try await Cluster(label: "kill-worker", input: try await Self.input())
            defer { cluster.tearDown() }
            try await cluster.startCoordinator()
            _ = try await Self.startThreeWorkers(cluster)
            try await Task.sleep(for: .seconds(2))  // mid-run: a block or so done, nothing finished

            let before = try await cluster.status()
            let victim = try #require(before.heldCounts.filter { $0.value == 3 }.keys.sorted().first { w in
                before.partitions(of: w).allSatisfy { before.row($0)?.state == "granted" }
            }, "no worker holds 3 unfinished partitions:\n\(before)")
            let lost = before.partitions(of: victim)
            let epochsBefore = before.epochs
            let child = try #require(cluster.workers[victim])
            child.kill()
            let killedAt = ContinuousClock.now
            let exit = await child.wait(timeout: .seconds(10))
            try #require(exit.signaled && exit.status == SIGKILL, "\(victim) was not running when killed: \(exit)")

            // Grant lines (coordinator) and start lines (new owner) are watched every 50 ms on the
            // side; `sluice status` (about a second per call in a debug build) shows the progress.
            let others = cluster.workers.filter { $0.key != victim }.mapValues(\.stderrPath)
            let coordinatorLog = try #require(cluster.coordinator).stderrPath
            let watcher = Task {
                await watchRecovery(coordinatorLog: coordinatorLog, workerLogs: others,
                                    victim: victim, partitions: lost, epochsBefore: epochsBefore, since: killedAt,
                                    timeout: .seconds(30))
            }
            var progressAfter: [Int: Duration] = [:]
            let deadline = killedAt + .seconds(40)
            while progressAfter.count < lost.count && ContinuousClock.now < deadline {
                guard let s = try await cluster.tryStatus() else {
                    try await Task.sleep(for: .milliseconds(100))
                    continue
                }
                let seen = ContinuousClock.now - killedAt
                for p in lost where progressAfter[p] == nil {
                    guard let row = s.row(p), let old = before.row(p), let owner = row.owner, owner != victim,
                          row.epoch > epochsBefore[p, default: 0] else { continue }
                    let moved = row.committed > old.committed || row.state == "finished"
                        || (row.watermark != old.watermark && row.watermark != "-")
                    if moved { progressAfter[p] = seen }
                }
            }
            let recovery = await watcher.value

            let ttl = Duration.milliseconds(cluster.leaseTTLMs)
            var report: [String] = []
            for p in lost {
                let grant = recovery.granted[p], started = recovery.started[p]
                report.append("partition \(p): granted to \(grant?.worker ?? "?") (epoch \(grant.map { "\($0.epoch)" } ?? "?")) after "
                              + "\(grant.map { "\($0.after.ms) ms" } ?? "—"), started by it after \(started.map { "\($0.ms) ms" } ?? "—"), "
                              + "progress in status after \(progressAfter[p].map { "\($0.ms) ms" } ?? "—")")
                let g = try #require(grant, "partition \(p) of the killed \(victim) was not granted again within 30 s:\n\(cluster.diagnostics())")
                #expect(g.after <= ttl + .seconds(2),
                        "partition \(p): granted again \(g.after.ms) ms after the kill; lease TTL + 2 s is \((ttl + .seconds(2)).ms) ms")
                #expect(started.map { $0 <= ttl + .seconds(2) } == true,
                        "partition \(p): the new owner started it \(started.map { "\($0.ms) ms" } ?? "never") after the kill")
                #expect(progressAfter[p] != nil, "partition \(p): status never showed the new owner's progress within 40 s")
            }
            print("[cluster kill-worker] killed \(victim) (partitions \(lost)) with lease TTL \(cluster.leaseTTLMs) ms, "
                  + "heartbeat \(cluster.heartbeatMs) ms:\n  " + report.joined(separator: "\n  "))

            let final = try await finishAndVerify(cluster, label: "kill-worker")
            for p in lost { #expect(final.row(p)?.owner != victim, "partition \(p) still owned by the killed \(victim)") }
            print("[cluster kill-worker] wall time \((ContinuousClock.now - began).ms) ms")
        }

        // MARK: 2. A fourth worker joins

        @Test("Cluster: a fourth worker joins mid-run; the rebalance gives 2/2/2/2 moving at most 2 partitions; exact result",
              .timeLimit(.minutes(5)))
        func fourthWorkerJoins() async throws {
            let began = ContinuousClock.now
            let cluster = try await Cluster(label: "join", input: try await Self.input())
            defer { cluster.tearDown() }
            try await cluster.startCoordinator()
            _ = try await Self.startThreeWorkers(cluster)
            try await Task.sleep(for: .seconds(1))

            let before = try await cluster.status()
            try #require(before.settled && before.heldCounts.values.sorted() == [2, 3, 3] && !before.partitions.contains { $0.state == "finished" },
                         "not a settled 3/3/2 mid-run before the join:\n\(before)")
            let joinedAt = ContinuousClock.now
            try cluster.startWorker("worker-4", rate: Self.rate)
            let after = try await cluster.waitForStatus("4 workers hold 2/2/2/2 partitions", timeout: .seconds(30)) {
                $0.settled && $0.heldCounts.count == 4 && $0.heldCounts.values.allSatisfy { $0 == 2 }
            }
            let settledAfter = ContinuousClock.now - joinedAt
            let moved = (0..<Self.workload.partitions).filter { before.owners[$0] != after.owners[$0] }
            print("[cluster join] before: \(ownersText(before)); after: \(ownersText(after)); moved \(moved) "
                  + "(settled \(settledAfter.ms) ms after worker-4 started)")
            #expect(moved.count <= 2, "the join moved \(moved.count) partitions (\(moved)); a sticky rebalance moves 2:\n\(before)\n---\n\(after)")
            for p in moved { #expect(after.owners[p] == "worker-4", "partition \(p) moved to \(after.owners[p] ?? "-"), not to the new worker-4") }
            #expect(after.workers.map(\.id).sorted() == ["worker-1", "worker-2", "worker-3", "worker-4"], "workers: \(after.workers)")

            _ = try await finishAndVerify(cluster, label: "join")
            print("[cluster join] wall time \((ContinuousClock.now - began).ms) ms")
        }

        // MARK: 3. The coordinator is SIGKILLed and restarted

        @Test("Cluster: SIGKILL the coordinator mid-run and restart it on the same state and port; epochs never go back; exact result",
              .timeLimit(.minutes(5)))
        func coordinatorRestarted() async throws {
            let began = ContinuousClock.now
            let cluster = try await Cluster(label: "coordinator-restart", input: try await Self.input())
            defer { cluster.tearDown() }
            try await Self.restartTheCoordinator(cluster, rate: Self.rate) { try await finishAndVerify($0, label: "coordinator-restart") }
            print("[cluster coordinator-restart] wall time \((ContinuousClock.now - began).ms) ms")
        }

        /// The coordinator SIGKILLed mid-run and restarted on the same state (SQLite file or
        /// PostgreSQL) and port: the workers rejoin, no epoch goes back, no (partition, epoch) is
        /// granted twice over both lives; then `finish` checks the result.
        static func restartTheCoordinator(_ cluster: Cluster, rate: Int, finish: (Cluster) async throws -> Void) async throws {
            let port = try freeLocalPort()
            let first = try await cluster.startCoordinator(port: port)
            _ = try await Self.startThreeWorkers(cluster, rate: rate)
            try await Task.sleep(for: .seconds(1))

            let before = try await cluster.status()
            try #require(!before.allFinished, "finished before the coordinator could be killed:\n\(before)")
            first.kill()
            let killed = await first.wait(timeout: .seconds(10))
            try #require(killed.signaled && killed.status == SIGKILL, "the coordinator was not running when killed: \(killed)")
            try await Task.sleep(for: .milliseconds(1_500))  // the workers notice and keep running their partitions

            let second = try await cluster.startCoordinator(port: port)
            let restartedAt = ContinuousClock.now
            // Every status from now on: no partition's epoch below what it was before the kill.
            var lowered: [String] = []
            var polls = 0
            func checkEpochs(_ s: ClusterStatus) {
                polls += 1
                for row in s.partitions where row.epoch < before.epochs[row.partition, default: 0] {
                    lowered.append("partition \(row.partition): epoch \(row.epoch) after the restart, \(before.epochs[row.partition]!) before")
                }
            }
            let ids = ["worker-1", "worker-2", "worker-3"]
            _ = try await cluster.waitForStatus("every worker rejoined the restarted coordinator", timeout: .seconds(30)) { s in
                checkEpochs(s)
                let log = cluster.log(second)
                return ids.allSatisfy { log.contains("coordinator: \($0) joined") } && s.settled
            }
            let rejoinedAfter = ContinuousClock.now - restartedAt
            let afterRestart = try await cluster.status()
            checkEpochs(afterRestart)
            _ = try await cluster.waitForStatus("every partition is finished", timeout: .seconds(120)) { s in
                checkEpochs(s)
                return s.allFinished
            }
            #expect(lowered.isEmpty, "epochs went back after the restart:\n\(lowered.joined(separator: "\n"))")

            for id in ids {
                let log = cluster.log(try #require(cluster.workers[id]))
                #expect(log.contains("connection to the coordinator lost"), "\(id) did not notice the coordinator going away:\n\(log.suffix(2_000))")
                #expect(ClusterLog.lines(log, containing: "worker \(id): joined").count >= 2, "\(id) did not join again:\n\(log.suffix(2_000))")
            }
            let grants1 = ClusterLog.grants(cluster.log(first)), grants2 = ClusterLog.grants(cluster.log(second))
            // No (partition, epoch) granted twice over both lives, and the second life never hands
            // out an epoch the first one used.
            let all = grants1 + grants2
            let repeated = Dictionary(grouping: all, by: { "\($0.partition)/\($0.epoch)" }).filter { $0.value.count > 1 }
            #expect(repeated.isEmpty, "granted twice over the restart: \(repeated.values.flatMap { $0 })")
            for g in grants2 {
                let firstLife = grants1.filter { $0.partition == g.partition }.map(\.epoch).max() ?? 0
                #expect(g.epoch > firstLife, "after the restart \(g), but the first coordinator had already granted epoch \(firstLife)")
            }
            print("[\(cluster.label)] epochs before the kill: \(epochsText(before)); after the restart: \(epochsText(afterRestart)); "
                  + "workers rejoined \(rejoinedAfter.ms) ms after the restart; \(grants1.count) grants before, \(grants2.count) after; "
                  + "\(polls) status polls checked")

            try await finish(cluster)
        }

        // MARK: 4. A zombie worker

        @Test("Cluster: a worker SIGSTOPped past its lease is fenced off when it wakes; exact result",
              .timeLimit(.minutes(5)))
        func zombieIsFenced() async throws {
            let began = ContinuousClock.now
            let cluster = try await Cluster(label: "zombie", input: try await Self.input())
            defer { cluster.tearDown() }
            try await Self.fenceOffAZombie(cluster, rate: Self.rate) { _ = try await finishAndVerify($0, label: "zombie") }
            print("[cluster zombie] wall time \((ContinuousClock.now - began).ms) ms")
        }

        /// A worker SIGSTOPped past its lease while the others take its partitions over and claim
        /// them in the store (SQLite or PostgreSQL); on SIGCONT its commits are fenced off (counted
        /// in its metrics, logged, reported to the coordinator); then `finish` checks the result.
        static func fenceOffAZombie(_ cluster: Cluster, rate: Int, finish: (Cluster) async throws -> Void) async throws {
            try await cluster.startCoordinator()
            _ = try await Self.startThreeWorkers(cluster, rate: rate, metrics: true)
            try await Task.sleep(for: .milliseconds(1_500))

            let before = try await cluster.status()
            let zombie = try #require(before.heldCounts.filter { $0.value == 3 }.keys.sorted().first { w in
                before.partitions(of: w).allSatisfy { before.row($0)?.state == "granted" }
            }, "no worker holds 3 unfinished partitions:\n\(before)")
            let held = before.partitions(of: zombie)
            let child = try #require(cluster.workers[zombie])
            let metricsPort = try await child.metricsPort()
            let fencedBefore = try metricValue("sluice_commits_fenced_total", in: httpGet(port: metricsPort, path: "/metrics").body)
            #expect(fencedBefore == 0, "\(zombie) reports \(fencedBefore.map { "\($0)" } ?? "no") fenced commits before the stop")
            // Its per-partition gauges and checkpoint histograms are exported (refreshed twice a second).
            var page = ""
            let exported = await eventually(timeout: .seconds(10), every: .milliseconds(250)) {
                page = (try? httpGet(port: metricsPort, path: "/metrics").body) ?? ""
                return metricValue("sluice_partitions_held", in: page) == 3
                    && held.allSatisfy { metricValue("sluice_partition_lag_events{partition=\"\($0)\"}", in: page) != nil }
                    && (metricValue("sluice_checkpoint_duration_seconds_count", in: page) ?? 0) > 0
            }
            #expect(exported, "\(zombie)'s /metrics lacks its partitions' gauges or checkpoint histograms:\n\(page.suffix(3_000))")
            for p in held {
                #expect((metricValue("sluice_partition_lag_events{partition=\"\(p)\"}", in: page) ?? -1) > 0,
                        "partition \(p) is throttled mid-input: its lag must be positive")
                #expect(metricValue("sluice_partition_watermark_ms{partition=\"\(p)\"}", in: page) != nil)
            }

            child.signal(SIGSTOP)
            let stoppedAt = ContinuousClock.now
            // Its leases lapse, the partitions go to the others, and they claim them in the store.
            let moved = try await cluster.waitForStatus("the stopped \(zombie)'s partitions have new owners", timeout: .seconds(30)) { s in
                held.allSatisfy { p in
                    guard let row = s.row(p), let owner = row.owner else { return false }
                    return owner != zombie && row.epoch > before.epochs[p, default: 0]
                }
            }
            let claimed = await eventually(timeout: .seconds(20)) {
                guard let epochs = cluster.storeEpochs() else { return false }
                return held.allSatisfy { epochs[$0, default: 0] > before.epochs[$0, default: 0] }
            }
            try #require(claimed, "the new owners did not claim \(held) in the store: \(cluster.storeEpochs() ?? [:])\n\(cluster.diagnostics())")
            // Stay stopped a little longer than a paced block, so its tasks wake with work due.
            let minimumStop = Duration.milliseconds(cluster.leaseTTLMs) + .seconds(4)
            if ContinuousClock.now - stoppedAt < minimumStop { try await Task.sleep(until: stoppedAt + minimumStop) }
            let stoppedFor = ContinuousClock.now - stoppedAt
            child.signal(SIGCONT)

            var fenced: Double = 0
            let sawFenced = await eventually(timeout: .seconds(20), every: .milliseconds(250)) {
                fenced = (try? metricValue("sluice_commits_fenced_total", in: httpGet(port: metricsPort, path: "/metrics").body)) ?? 0
                return fenced > 0 && !ClusterLog.lines(cluster.log(child), containing: "fenced off").isEmpty
            }
            let fencedLines = ClusterLog.lines(cluster.log(child), containing: "fenced off")
            print("[\(cluster.label)] stopped \(zombie) (partitions \(held)) for \(stoppedFor.ms) ms; meanwhile: \(ownersText(moved)); "
                  + "after SIGCONT sluice_commits_fenced_total = \(fenced); its log:\n  " + fencedLines.joined(separator: "\n  "))
            #expect(sawFenced, "the zombie \(zombie) had no commit fenced off within 20 s of SIGCONT (metric \(fenced)):\n\(cluster.log(child).suffix(3_000))")
            #expect(fenced > 0, "sluice_commits_fenced_total of \(zombie) is \(fenced)")
            #expect(!fencedLines.isEmpty, "no 'fenced off' line in \(zombie)'s log")
            // The worker tells the coordinator after it logs the fencing: give the message a moment.
            let coordinatorHeard = await eventually(timeout: .seconds(10), every: .milliseconds(200)) {
                cluster.coordinatorLog.contains("coordinator: \(zombie) was fenced off partition")
            }
            #expect(coordinatorHeard, "the coordinator did not hear of the fenced commit:\n\(cluster.coordinatorLog.suffix(3_000))")

            try await finish(cluster)
        }

        // MARK: 5. The coordinator stops on SIGTERM

        @Test("Cluster: the coordinator stops cleanly on SIGTERM (exit 0)", .timeLimit(.minutes(2)))
        func coordinatorSIGTERM() async throws {
            let input = try await GeneratedInputs.shared.directory(seed: 5, events: 20_000, partitions: 8)
            let cluster = try await Cluster(label: "coordinator-sigterm", input: input, workerCerts: 1)
            defer { cluster.tearDown() }
            let coordinator = try await cluster.startCoordinator()
            _ = try await cluster.status()
            coordinator.signal(SIGTERM)
            let exit = await coordinator.wait(timeout: .seconds(20))
            #expect(exit.exitedWith0, "the coordinator should exit 0 on SIGTERM: \(exit)")
        }
    }
}

// MARK: - Shared steps

/// Waits for every partition to finish, stops the workers with SIGTERM (each must exit 0) and the
/// coordinator, then checks the sink: `sluice verify` passes, no duplicates, one contiguous commit
/// log per partition, the store's epochs are the coordinator's, and no (partition, epoch) was
/// granted twice over all the coordinator's logs. Returns the last status.
@discardableResult
func finishAndVerify(_ cluster: Cluster, label: String, timeout: Duration = .seconds(150),
                     sourceLocation: SourceLocation = #_sourceLocation) async throws -> ClusterStatus {
    let finished = try await cluster.waitUntilAllFinished(timeout: timeout)
    let storeEpochs = cluster.storeEpochs() ?? [:]
    for row in finished.partitions {
        #expect(row.lag == 0, "partition \(row.partition) is finished but reports lag \(row.lag)", sourceLocation: sourceLocation)
        #expect(storeEpochs[row.partition] == row.epoch,
                "partition \(row.partition): epoch \(row.epoch) at the coordinator, \(storeEpochs[row.partition].map { "\($0)" } ?? "none") in the store",
                sourceLocation: sourceLocation)
    }
    let exits = await cluster.stopGracefully()
    for (id, exit) in exits.sorted(by: { $0.key < $1.key }) where id != "coordinator" {
        #expect(exit.exitedWith0, "\(id) did not stop cleanly on SIGTERM: \(exit)", sourceLocation: sourceLocation)
    }

    let grants = ClusterLog.grants(cluster.coordinatorLog)
    var seen: [String: Int] = [:]
    for g in grants { seen["\(g.partition)/\(g.epoch)", default: 0] += 1 }
    let twice = seen.filter { $0.value > 1 }.keys.sorted()
    #expect(twice.isEmpty, "(partition/epoch) granted more than once: \(twice)\n\(grants)", sourceLocation: sourceLocation)
    #expect(grants.count >= finished.partitions.count, "only \(grants.count) grant lines", sourceLocation: sourceLocation)

    let verify = try await cluster.verify()
    #expect(verify.exitedWith0, "sluice verify: \(verify)\n\(cluster.diagnostics())", sourceLocation: sourceLocation)
    let counts = try sqliteSinkCounts(path: cluster.outputDB, table: "results")
    #expect(counts.hasNoDuplicates, "duplicates in the sink: \(counts)", sourceLocation: sourceLocation)
    let log = try await expectContiguousCommitLog(statePath: cluster.outputDB, lineCounts: try inputLineCounts(directory: cluster.input),
                                                  sourceLocation: sourceLocation)
    print("[cluster \(label)] verify: \(verify.stdout.split(separator: "\n").first ?? "") — \(counts); "
          + "\(log.count) commits, \(grants.count) grants, final epochs \(epochsText(finished))")
    return finished
}

/// When each of a killed worker's partitions was granted again (coordinator log) and started by
/// its new owner (the owner's log), measured from the kill.
struct RecoveryTimes: Sendable {
    var granted: [Int: (worker: String, epoch: Int64, after: Duration)] = [:]
    var started: [Int: Duration] = [:]
}

/// Polls the logs every 50 ms until every partition has been granted to and started by another
/// worker with a newer epoch, or `timeout` passes.
func watchRecovery(coordinatorLog: String, workerLogs: [String: String], victim: String, partitions: [Int],
                   epochsBefore: [Int: Int64], since start: ContinuousClock.Instant, timeout: Duration) async -> RecoveryTimes {
    var times = RecoveryTimes()
    while ContinuousClock.now - start < timeout {
        let now = ContinuousClock.now - start
        for g in ClusterLog.grants(Child.read(coordinatorLog))
        where partitions.contains(g.partition) && times.granted[g.partition] == nil && g.worker != victim
            && g.epoch > epochsBefore[g.partition, default: 0] {
            times.granted[g.partition] = (g.worker, g.epoch, now)
        }
        for (p, grant) in times.granted where times.started[p] == nil {
            if let path = workerLogs[grant.worker],
               ClusterLog.workerGrants(Child.read(path)).contains(where: { $0.partition == p && $0.epoch == grant.epoch }) {
                times.started[p] = now
            }
        }
        if times.started.count == partitions.count { break }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return times
}

func ownersText(_ s: ClusterStatus) -> String {
    s.partitions.map { "\($0.partition)→\($0.owner ?? "-")" }.joined(separator: " ")
}

func epochsText(_ s: ClusterStatus) -> String {
    s.partitions.map { "\($0.partition):\($0.epoch)" }.joined(separator: " ")
}
