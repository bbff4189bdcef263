// A leading coordinator whose lease-ledger connection to PostgreSQL is blackholed (the chaos
// FaultProxy between it and the server holds every byte back for 10 s) must go on answering the
// heartbeats of healthy workers: its durable writes wait on the ledger's own executor, never on
// the actor that answers heartbeats and status calls.

import Foundation
import SluiceChaos
import Testing

extension TestPostgres {
    /// The test server's port, from its URL (`postgres://USER@HOST:PORT/DB…`).
    static func port() throws -> Int {
        let url = try baseURL()
        guard let scheme = url.range(of: "://") else { throw TestSetupError("not a URL: \(url)") }
        var rest = url[scheme.upperBound...]
        if let at = rest.lastIndex(of: "@") { rest = rest[rest.index(after: at)...] }
        let hostPort = rest.prefix { $0 != "/" && $0 != "?" }
        guard let colon = hostPort.lastIndex(of: ":"), let port = Int(hostPort[hostPort.index(after: colon)...]) else {
            throw TestSetupError("no port in the test server's URL")
        }
        return port
    }
}

extension SluiceEndToEndTests.PostgresTests {
    @Test("PostgreSQL: the leader's ledger connection blackholed for 10 s: heartbeats of healthy workers are answered, no lease lapses, no partition moves",
          .timeLimit(.minutes(4)))
    func stalledLedgerKeepsAnsweringHeartbeats() async throws {
        let input = try await Self.input()
        let url = try TestPostgres.freshDatabase("stalledledger")
        let proxy = try FaultProxy(targetPort: try TestPostgres.port(), lifetime: 600)
        defer { proxy.close() }
        // Lease 3 s, heartbeats every 500 ms: a 10 s stall is more than three leases.
        let cluster = try await Cluster(label: "pg-stalled-ledger", input: input, database: url, leaseTTLMs: 3_000, heartbeatMs: 500)
        defer { cluster.tearDown() }
        // Only the coordinator's store goes through the proxy (libpq takes host and port from the
        // query over the URL's); the workers' sink and checkpoints reach the server directly.
        cluster.coordinatorStore = url + (url.contains("?") ? "&" : "?") + "host=127.0.0.1&port=\(proxy.port)"
        // The leadership lease outlasts the stall, so stepping down is not what this test sees.
        cluster.leaderTTLMs = 60_000
        try await cluster.startCoordinator()
        try cluster.startWorker("worker-1", rate: 500)
        try cluster.startWorker("worker-2", rate: 500)
        let before = try await cluster.waitForStatus("every partition granted to worker-1 and worker-2", timeout: .seconds(90)) {
            $0.settled && Set($0.owners.values) == ["worker-1", "worker-2"]
        }

        proxy.apply(.blackhole, direction: .both)
        let stall = ContinuousClock.now
        // A join during the stall: its rebalance revokes partitions, and the releases that follow
        // are written through the blackholed connection (they wait; nothing moves meanwhile).
        try cluster.startWorker("worker-3", rate: 500)
        var answers: [ClusterStatus] = []
        var slowest: Duration = .zero
        for _ in 0..<40 where ContinuousClock.now - stall < .seconds(10) {
            let asked = ContinuousClock.now
            let status = try await cluster.tryStatus()
            slowest = max(slowest, ContinuousClock.now - asked)
            if let status { answers.append(status) }
            try await Task.sleep(for: .milliseconds(300))
        }
        let stalledFor = ContinuousClock.now - stall
        proxy.heal()
        print("[stalled ledger] \(answers.count) status answers in \(stalledFor.ms) ms of stall, slowest \(slowest.ms) ms")

        #expect(slowest < .seconds(4), "a status call waited \(slowest.ms) ms during the stall: the coordinator was blocked")
        #expect(answers.count >= 4, "only \(answers.count) status answers during the \(stalledFor.ms) ms stall")
        for status in answers {
            #expect(status.owners == before.owners && status.epochs == before.epochs,
                    "a partition moved during the stall:\nbefore:\n\(before)\nduring:\n\(status)")
            for worker in status.workers where worker.id != "worker-3" {
                #expect(worker.lastHeartbeatMsAgo < 2_500, "\(worker.id)'s heartbeats went unanswered: \(worker.lastHeartbeatMsAgo) ms ago\n\(status)")
            }
        }

        // Once the store answers again, the join completes: each partition moved at most once (to
        // worker-3), none lapsed.
        let after = try await cluster.waitForStatus("worker-3 holds partitions", timeout: .seconds(60)) {
            $0.settled && $0.heldCounts.count == 3
        }
        for row in after.partitions {
            let was = try #require(before.row(row.partition))
            let kept = row.owner == was.owner && row.epoch == was.epoch
            let movedOnce = row.owner == "worker-3" && row.epoch == was.epoch + 1
            #expect(kept || movedOnce, "partition \(row.partition): was \(was), now \(row)")
        }
        #expect(!cluster.coordinatorLog.contains("lapsed"), "a lease lapsed:\n\(cluster.coordinatorLog.suffix(3_000))")
    }
}
