// Real `sluice` processes on PostgreSQL: `sluice run` SIGKILLed and resumed; a cluster (coordinator
// leases and worker checkpoints in PostgreSQL) with a worker SIGKILLed; and the server itself
// stopped with `pg_ctl stop -m immediate` mid-run and started again. Each ends with `sluice verify`
// against the oracle, and direct checks: no duplicate rows, one contiguous commit log per partition.

import Foundation
import SluiceStorage
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension SluiceEndToEndTests.PostgresTests {
    /// 400,000 events in 8 partitions: big enough for kills to land mid-run, small for a debug build.
    static let workload = (seed: UInt64(77), events: 400_000, partitions: 8)

    static func input() async throws -> String {
        try await GeneratedInputs.shared.directory(seed: workload.seed, events: workload.events, partitions: workload.partitions)
    }

    /// No (window, key) twice, no late event or dead letter twice; the commit log covers every line of
    /// every partition exactly once, from 0 to its end. Returns (rows, commits).
    static func expectExactlyOnce(_ url: String, table: String = "results", input: String,
                                  sourceLocation: SourceLocation = #_sourceLocation) async throws -> (rows: Int64, commits: Int) {
        let conn = try TestPostgres.connect(url)
        let rows = try conn.execute("SELECT COUNT(*), COUNT(DISTINCT (window_start_ms, auction)) FROM \(table)")
        #expect(try rows.int64(0, 0) == rows.int64(0, 1), "duplicate rows in \(table)", sourceLocation: sourceLocation)
        #expect(try rows.int64(0, 0) > 10_000, "suspiciously few rows", sourceLocation: sourceLocation)
        for suffix in ["late", "dead_letters"] {
            let r = try conn.execute("SELECT COUNT(*), COUNT(DISTINCT (partition, \"offset\")) FROM \(table)_\(suffix)")
            #expect(try r.int64(0, 0) == r.int64(0, 1), "duplicates in \(table)_\(suffix)", sourceLocation: sourceLocation)
        }
        let store = try PostgresCheckpointStore(url: PostgresURL(url), logger: .lines("test", { _ in }))
        let log = try await store.commitLog()
        let lines = try inputLineCounts(directory: input)
        for (partition, count) in lines.enumerated() {
            let commits = log.filter { $0.partition == partition }
            var from: Int64 = 0
            for (i, c) in commits.enumerated() {
                #expect(c.seq == Int64(i + 1) && c.fromOffset == from,
                        "partition \(partition): commit #\(i) is seq \(c.seq) from \(c.fromOffset), expected from \(from)", sourceLocation: sourceLocation)
                from = c.toOffset
            }
            #expect(from == count, "partition \(partition): commits end at \(from) of \(count) lines", sourceLocation: sourceLocation)
        }
        return (try rows.int64(0, 0), log.count)
    }

    @Test("sluice run on PostgreSQL: SIGKILLed at random moments, resumed; equals the oracle", .timeLimit(.minutes(8)))
    func runKilledAndResumed() async throws {
        // 100,000 events per partition at 20,000 events/s: at least 5 s on any machine, room for
        // several kills at up to 1.2 s (unthrottled, a fast machine finished in under 0.8 s).
        let input = try await GeneratedInputs.shared.directory(seed: Self.workload.seed, events: 800_000, partitions: Self.workload.partitions)
        let url = try TestPostgres.freshDatabase("run")
        let scratch = try ScratchDir("pg-run")
        defer { scratch.remove() }
        let run = ["run", "--input", "file:\(input)", "--output", url, "--parallelism", "2",
                   "--checkpoint-interval-ms", "200", "--rate", "20000", "--quiet"]
        let report = try await killRepeatedly(run, scratch: scratch, label: "run", seed: 7, delaysMs: 400...1_200,
                                              targetKills: 4, maxAttempts: 8)
        print("[postgres run] \(report)")
        #expect(report.killedAfterMs.count >= 2, "only \(report) before the run finished; expected at least 2 kills")
        let final = try await sluice(run, scratch: scratch, label: "run-final")
        try #require(final.exitedWith0, "the run after the kills did not complete: \(final)")

        let verify = try await sluice(["verify", "--input", "file:\(input)", "--output", url], scratch: scratch, label: "verify")
        #expect(verify.exitedWith0, "sluice verify after \(report): \(verify)")
        let (rows, commits) = try await Self.expectExactlyOnce(url, input: input)
        print("[postgres run] verify: \(verify.stdout.split(separator: "\n").first ?? ""); \(rows) rows, \(commits) commits")
    }

    /// Waits until every partition is finished, checks the store's epochs are the coordinator's,
    /// stops the cluster (SIGTERM), and verifies the sink.
    static func finishAndVerify(_ cluster: Cluster, label: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let finished = try await cluster.waitUntilAllFinished(timeout: .seconds(180))
        let conn = try TestPostgres.connect(cluster.output)
        let stored = try conn.execute("SELECT partition, epoch FROM sluice_partitions ORDER BY partition")
        var epochs: [Int: Int64] = [:]
        for r in 0..<stored.count { epochs[Int(try stored.int64(r, 0))] = try stored.int64(r, 1) }
        for row in finished.partitions {
            #expect(epochs[row.partition] == row.epoch, "partition \(row.partition): epoch \(row.epoch) at the coordinator, \(epochs[row.partition] ?? -1) in the store",
                    sourceLocation: sourceLocation)
        }
        let leases = try conn.execute("SELECT COUNT(*) FROM sluice_coordinator_leases").int64(0, 0)
        #expect(leases == Int64(finished.partitions.count), "the coordinator's leases are not in PostgreSQL", sourceLocation: sourceLocation)
        let exits = await cluster.stopGracefully()
        for (id, exit) in exits where id != "coordinator" {
            #expect(exit.exitedWith0, "\(id) did not stop cleanly: \(exit)", sourceLocation: sourceLocation)
        }
        let verify = try await cluster.verify()
        #expect(verify.exitedWith0, "sluice verify: \(verify)\n\(cluster.diagnostics())", sourceLocation: sourceLocation)
        let (rows, commits) = try await expectExactlyOnce(cluster.output, input: cluster.input, sourceLocation: sourceLocation)
        print("[postgres \(label)] verify: \(verify.stdout.split(separator: "\n").first ?? ""); \(rows) rows, \(commits) commits; epochs \(epochs.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: " "))")
    }

    @Test("Cluster on PostgreSQL (coordinator --store, worker checkpoints, sink): a worker SIGKILLed; equals the oracle",
          .timeLimit(.minutes(6)))
    func clusterWorkerKilled() async throws {
        let cluster = try await Cluster(label: "pg-kill", input: try await Self.input(),
                                        database: try TestPostgres.freshDatabase("cluster"))
        defer { cluster.tearDown() }
        try await cluster.startCoordinator()
        for i in 1...3 { try cluster.startWorker("worker-\(i)", rate: 5_000) }
        let settled = try await cluster.waitForStatus("3 workers hold 3/3/2 partitions", timeout: .seconds(60)) {
            $0.settled && $0.heldCounts.values.sorted() == [2, 3, 3]
        }
        try await Task.sleep(for: .seconds(2))
        let victim = try #require(settled.heldCounts.filter { $0.value == 3 }.keys.sorted().first)
        let child = try #require(cluster.workers[victim])
        child.kill()
        let exit = await child.wait(timeout: .seconds(10))
        try #require(exit.signaled && exit.status == SIGKILL, "\(victim) was not running when killed: \(exit)")
        try await cluster.waitForStatus("\(victim)'s partitions moved", timeout: .seconds(60)) { s in
            s.settled && !s.owners.values.contains(victim)
        }
        try await Self.finishAndVerify(cluster, label: "cluster kill-worker")
    }

    @Test("Cluster on PostgreSQL: the coordinator SIGKILLed mid-run and restarted on the same store; epochs never go back; equals the oracle",
          .timeLimit(.minutes(6)))
    func clusterCoordinatorRestarted() async throws {
        let cluster = try await Cluster(label: "pg-coordinator-restart", input: try await Self.input(),
                                        database: try TestPostgres.freshDatabase("restart"))
        defer { cluster.tearDown() }
        try await SluiceEndToEndTests.ClusterTests.restartTheCoordinator(cluster, rate: 5_000) {
            try await Self.finishAndVerify($0, label: "coordinator-restart")
        }
    }

    @Test("Cluster on PostgreSQL: a worker SIGSTOPped past its lease is fenced off when it wakes; equals the oracle",
          .timeLimit(.minutes(6)))
    func clusterZombieFenced() async throws {
        // The SQLite scenario's input and rate (125,000 events per partition at 8,000/s): the
        // stopped worker's partitions must have committed a checkpoint and still be mid-input
        // when their gauges are checked, and a 1 MiB block is paced as a whole.
        let cluster = try await Cluster(label: "pg-zombie", input: try await SluiceEndToEndTests.ClusterTests.input(),
                                        database: try TestPostgres.freshDatabase("zombie"))
        defer { cluster.tearDown() }
        try await SluiceEndToEndTests.ClusterTests.fenceOffAZombie(cluster, rate: SluiceEndToEndTests.ClusterTests.rate) {
            try await Self.finishAndVerify($0, label: "zombie")
        }
    }

    @Test("PostgreSQL stopped with pg_ctl stop -m immediate mid-run and started again: the cluster resumes by itself; equals the oracle",
          .timeLimit(.minutes(6)))
    func serverRestartedMidRun() async throws {
        let cluster = try await Cluster(label: "pg-outage", input: try await Self.input(),
                                        database: try TestPostgres.freshDatabase("outage"))
        defer {
            try? TestPostgres.start()  // whatever happened, leave the server up for the next test
            cluster.tearDown()
        }
        try await cluster.startCoordinator()
        for i in 1...2 { try cluster.startWorker("worker-\(i)", rate: 5_000) }
        try await cluster.waitForStatus("2 workers hold 4/4 partitions", timeout: .seconds(60)) {
            $0.settled && $0.heldCounts.values.sorted() == [4, 4]
        }
        // Mid-run: after the first commits, long before the end.
        let before = try await cluster.waitForStatus("a first commit", timeout: .seconds(60)) { s in
            s.partitions.contains { $0.committed > 0 }
        }
        #expect(!before.allFinished)
        try TestPostgres.stopImmediately()
        let stoppedAt = ContinuousClock.now
        try await Task.sleep(for: .seconds(5))
        try TestPostgres.start()
        print("[postgres outage] server down for \((ContinuousClock.now - stoppedAt).components.seconds) s; committed before: "
              + before.partitions.map { "\($0.partition):\($0.committed)" }.joined(separator: " "))

        try await Self.finishAndVerify(cluster, label: "outage")
        let logs = cluster.workers.values.map { cluster.log($0) }.joined(separator: "\n")
        #expect(logs.contains("PostgreSQL unavailable"), "no worker logged the outage:\n\(cluster.diagnostics())")
        #expect(logs.contains("is back after"), "no worker logged its reconnection:\n\(cluster.diagnostics())")
        #expect(!logs.contains("stopped on error"), "a partition failed instead of waiting for the server:\n\(cluster.diagnostics())")
    }
}

extension SluiceEndToEndTests.PostgresTests {
    @Test("Two coordinators on PostgreSQL: the leader SIGKILLed mid-run, the follower leads within the leadership lease, workers reconnect by themselves; equals the oracle",
          .timeLimit(.minutes(6)))
    func coordinatorFailover() async throws {
        let cluster = try await Cluster(label: "pg-failover", input: try await Self.input(),
                                        database: try TestPostgres.freshDatabase("failover"))
        defer { cluster.tearDown() }
        try await failOverTheLeader(cluster, startWorkers: {
            for i in 1...3 { try cluster.startWorker("worker-\(i)", rate: 5_000) }
            return try await cluster.waitForStatus("3 workers hold 3/3/2 partitions", timeout: .seconds(60)) {
                $0.settled && $0.heldCounts.values.sorted() == [2, 3, 3]
            }
        })
        try await Self.finishAndVerify(cluster, label: "coordinator failover")
    }
}
