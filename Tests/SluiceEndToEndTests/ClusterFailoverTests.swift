// Two coordinators share the state: one leads, the other follows. The leader is SIGKILLed mid-run;
// the follower must lead within the leadership lease, the workers must find it by themselves, and
// the result must still equal the oracle.

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension SluiceEndToEndTests.ClusterTests {
    @Test("Cluster: the leading coordinator SIGKILLed; the follower leads within the leadership TTL, workers follow it; exact result",
          .timeLimit(.minutes(5)))
    func leaderFailover() async throws {
        let cluster = try await Cluster(label: "failover", input: try await Self.input())
        defer { cluster.tearDown() }
        try await failOverTheLeader(cluster, startWorkers: { try await Self.startThreeWorkers(cluster) })
        _ = try await finishAndVerify(cluster, label: "failover")
    }
}

/// Two coordinators on `cluster`'s state; workers started by `startWorkers`; the leader SIGKILLed
/// mid-run. Checks the follower leads within the leadership lease plus a second, that every worker
/// rejoins it, and that no epoch goes back; leaves the follower as the cluster's coordinator.
func failOverTheLeader(_ cluster: Cluster, startWorkers: () async throws -> ClusterStatus) async throws {
    let leader = try await cluster.startCoordinator(id: "coordinator-a")
    let follower = try await cluster.startCoordinator(id: "coordinator-b", standby: true)
    let followerWaits = await eventually(timeout: .seconds(10)) {
        cluster.log(follower).contains("coordinator: follower; coordinator-a leads")
    }
    #expect(followerWaits, "the second coordinator did not settle as a follower:\n\(cluster.log(follower).suffix(2_000))")
    _ = try await startWorkers()
    try await Task.sleep(for: .seconds(2))

    let before = try await cluster.status()
    try #require(!before.allFinished, "finished before the leader could be killed:\n\(before)")
    // Mid-run, throttled: every unfinished partition reports input left.
    for row in before.partitions where row.state == "granted" {
        #expect(row.lag > 0, "partition \(row.partition) reports no lag mid-run:\n\(before)")
    }
    leader.kill()
    let killedAt = ContinuousClock.now
    var tookOver: Duration?
    for _ in 0..<400 {
        if cluster.log(follower).contains("coordinator: leading (leader epoch") {
            tookOver = ContinuousClock.now - killedAt
            break
        }
        try await Task.sleep(for: .milliseconds(25))
    }
    let takeover = try #require(tookOver, "the follower never led:\n\(cluster.diagnostics())")
    #expect(takeover <= .milliseconds(cluster.leaderTTLMs + 1_000),
            "the follower led \(takeover.ms) ms after the leader died; the leadership lease is \(cluster.leaderTTLMs) ms")

    let ids = ["worker-1", "worker-2", "worker-3"]
    var lowered: [String] = []
    _ = try await cluster.waitForStatus("every worker rejoined the new leader", timeout: .seconds(30)) { s in
        for row in s.partitions where row.epoch < before.epochs[row.partition, default: 0] {
            lowered.append("partition \(row.partition): epoch \(row.epoch), \(before.epochs[row.partition, default: 0]) before")
        }
        let log = cluster.log(follower)
        return ids.allSatisfy { log.contains("coordinator: \($0) joined") } && s.settled
    }
    let rejoined = ContinuousClock.now - killedAt
    #expect(lowered.isEmpty, "epochs went back after the failover:\n\(lowered.joined(separator: "\n"))")
    print("[failover \(cluster.database == nil ? "sqlite" : "postgres")] the follower led \(takeover.ms) ms after SIGKILL of the leader (lease \(cluster.leaderTTLMs) ms); "
          + "all workers rejoined it after \(rejoined.ms) ms")

    cluster.promoteStandby(follower)
}
