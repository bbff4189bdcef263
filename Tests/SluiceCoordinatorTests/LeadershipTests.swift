import Foundation
import SluiceCoordinator
import Testing

/// The leadership lease between coordinators sharing one SQLite file, and the fence it puts on
/// the lease ledger: two handles on one file stand for two coordinator processes.
@Suite struct LeadershipTests {
    func scratchFile() -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-leadership-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.appendingPathComponent("coordinator.db").path
    }

    @Test("One leader at a time; a follower takes an expired lease with a higher epoch; the deposed leader's writes are refused")
    func leaseExpiresAndFencesTheLedger() throws {
        let path = scratchFile()
        let a = try SQLiteLeadership(path: path), b = try SQLiteLeadership(path: path)
        let ttl: Int64 = 200
        let first = try #require(try a.tryAcquire(candidate: "a", ttlMs: ttl))
        #expect(try b.tryAcquire(candidate: "b", ttlMs: ttl) == nil, "a live lease must not be taken")
        #expect(try a.renew(candidate: "a", epoch: first, ttlMs: ttl))
        #expect(try b.holder()?.candidate == "a")

        let ledgerA = try SQLiteLeaseLedger(path: path)
        ledgerA.fence = first
        try ledgerA.save(partition: 0, epoch: 1, owner: "worker-1")

        Thread.sleep(forTimeInterval: Double(ttl) / 1_000 + 0.1)  // a stops renewing: its lease expires
        let second = try #require(try b.tryAcquire(candidate: "b", ttlMs: ttl))
        #expect(second > first, "leader epochs only grow")
        #expect(try a.renew(candidate: "a", epoch: first, ttlMs: ttl) == false, "the old leader must learn it lost")
        #expect(throws: NotLeader.self) { try ledgerA.save(partition: 0, epoch: 2, owner: "worker-2") }
        #expect(throws: NotLeader.self) { try ledgerA.batch { try ledgerA.save(partition: 1, epoch: 1, owner: "worker-2") } }

        let ledgerB = try SQLiteLeaseLedger(path: path)
        ledgerB.fence = second
        try ledgerB.save(partition: 0, epoch: 2, owner: "worker-2")
        let rows = try ledgerB.load()
        #expect(rows.count == 1 && rows[0].epoch == 2 && rows[0].owner == "worker-2", "only the leader's write exists: \(rows)")
    }

    @Test("A resigned lease is free at once; a restarted holder leads again at once, with a new epoch")
    func resignAndRestart() throws {
        let path = scratchFile()
        let a = try SQLiteLeadership(path: path), b = try SQLiteLeadership(path: path)
        let first = try #require(try a.tryAcquire(candidate: "a", ttlMs: 60_000))
        let restarted = try #require(try a.tryAcquire(candidate: "a", ttlMs: 60_000))
        #expect(restarted == first + 1, "the same candidate restarted fences its former self")
        #expect(try b.tryAcquire(candidate: "b", ttlMs: 60_000) == nil)
        try a.resign(candidate: "a", epoch: restarted)
        #expect(try b.tryAcquire(candidate: "b", ttlMs: 60_000) == restarted + 1)
    }
}
