// A rolling update as Kubernetes does it: a replacement worker starts, then an old one gets
// SIGTERM (checkpoint, release, exit 0); one worker after another. The result must equal the
// oracle, and the time each partition waited for a new owner is measured.

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension SluiceEndToEndTests.ClusterTests {
    @Test("Cluster: a rolling update (each worker replaced, then SIGTERMed); partitions change hands in under 1 s; exact result",
          .timeLimit(.minutes(5)))
    func rollingUpdate() async throws {
        let cluster = try await Cluster(label: "rolling-update", input: try await Self.input(), workerCerts: 6)
        defer { cluster.tearDown() }
        try await cluster.startCoordinator()
        _ = try await Self.startThreeWorkers(cluster)

        var handovers: [(partition: Int, from: String, ms: Int64)] = []
        for old in 1...3 {
            let replacement = "worker-\(old + 3)", leaving = "worker-\(old)"
            try cluster.startWorker(replacement, rate: Self.rate)
            let settled = try await cluster.waitForStatus("\(replacement) holds partitions", timeout: .seconds(60)) { s in
                s.settled && (s.heldCounts[replacement] ?? 0) > 0 && s.heldCounts.count == 4
            }
            if settled.allFinished { break }
            let held = settled.partitions(of: leaving)
            let grantsBefore = ClusterLog.grants(cluster.coordinatorLog).count
            let child = try #require(cluster.workers[leaving])
            child.signal(SIGTERM)
            let signalled = ContinuousClock.now
            var moved: [Int: Duration] = [:]
            while moved.count < held.count, ContinuousClock.now - signalled < .seconds(20) {
                for grant in ClusterLog.grants(cluster.coordinatorLog).dropFirst(grantsBefore)
                where held.contains(grant.partition) && grant.worker != leaving && moved[grant.partition] == nil {
                    moved[grant.partition] = ContinuousClock.now - signalled
                }
                try await Task.sleep(for: .milliseconds(10))
            }
            let exit = await child.wait(timeout: .seconds(30))
            #expect(exit.exitedWith0, "\(leaving) did not stop cleanly on SIGTERM: \(exit)")
            for p in held {
                let waited = try #require(moved[p], "partition \(p) of \(leaving) found no new owner:\n\(cluster.diagnostics())")
                handovers.append((p, leaving, waited.ms))
            }
        }
        let text = handovers.map { "partition \($0.partition) (from \($0.from)): \($0.ms) ms" }.joined(separator: ", ")
        print("[cluster rolling-update] from SIGTERM of the old owner to the grant elsewhere: \(text)")
        #expect(!handovers.isEmpty, "no partition changed hands")
        for h in handovers {
            #expect(h.ms < 1_000, "partition \(h.partition) waited \(h.ms) ms for a new owner after SIGTERM of \(h.from)")
        }
        _ = try await finishAndVerify(cluster, label: "rolling-update")
    }
}
