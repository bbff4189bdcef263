import Foundation
import SluiceCoordinator
import SluiceStorage
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
    func leaseExpiresAndFencesTheLedger() async throws {
        let path = scratchFile()
        let a = try await SQLiteLeadership(path: path), b = try await SQLiteLeadership(path: path)
        let ttl: Int64 = 2_000  // wide: under load, the three calls before the sleep took over 200 ms
        let ca = LeaderCandidate(name: "a"), cb = LeaderCandidate(name: "b")
        let first = try #require(try await a.tryAcquire(candidate: ca, ttlMs: ttl))
        #expect(try await b.tryAcquire(candidate: cb, ttlMs: ttl) == nil, "a live lease must not be taken")
        #expect(try await a.renew(candidate: ca, epoch: first, ttlMs: ttl))
        #expect(try await b.holder()?.candidate == "a")

        let ledgerA = try await SQLiteLeaseLedger(path: path)
        try await ledgerA.write([LeaseRecord(partition: 0, epoch: 1, owner: "worker-1")], leaderEpoch: first)

        try await Task.sleep(for: .milliseconds(ttl + 100))  // a stops renewing: its lease expires
        let second = try #require(try await b.tryAcquire(candidate: cb, ttlMs: ttl))
        #expect(second > first, "leader epochs only grow")
        #expect(try await a.renew(candidate: ca, epoch: first, ttlMs: ttl) == false, "the old leader must learn it lost")
        await #expect(throws: NotLeader.self) {
            try await ledgerA.write([LeaseRecord(partition: 0, epoch: 2, owner: "worker-2"),
                                     LeaseRecord(partition: 1, epoch: 1, owner: "worker-2")], leaderEpoch: first)
        }

        let ledgerB = try await SQLiteLeaseLedger(path: path)
        try await ledgerB.write([LeaseRecord(partition: 0, epoch: 2, owner: "worker-2")], leaderEpoch: second)
        let rows = try await ledgerB.load()
        #expect(rows == [LeaseRecord(partition: 0, epoch: 2, owner: "worker-2")], "only the leader's writes exist: \(rows)")
    }

    @Test("A resigned lease is free at once; the same instance retakes its own lease at once, with a new epoch")
    func resignAndRetake() async throws {
        let path = scratchFile()
        let a = try await SQLiteLeadership(path: path), b = try await SQLiteLeadership(path: path)
        let ca = LeaderCandidate(name: "a"), cb = LeaderCandidate(name: "b")
        let first = try #require(try await a.tryAcquire(candidate: ca, ttlMs: 60_000))
        let again = try #require(try await a.tryAcquire(candidate: ca, ttlMs: 60_000))
        #expect(again == first + 1, "retaking its own lease fences its former leadership")
        #expect(try await b.tryAcquire(candidate: cb, ttlMs: 60_000) == nil)
        try await a.resign(candidate: ca, epoch: again)
        #expect(try await b.tryAcquire(candidate: cb, ttlMs: 60_000) == again + 1)
    }

    @Test("Two live instances with one name: the second neither takes nor renews the first's lease")
    func sameNameIsNotTheSameHolder() async throws {
        let path = scratchFile()
        let a = try await SQLiteLeadership(path: path), b = try await SQLiteLeadership(path: path)
        // Both stand for processes of this host; the first is this (live) process.
        let live = LeaderCandidate(name: "coordinator"), twin = LeaderCandidate(name: "coordinator", instance: Self.otherInstanceOfThisProcess())
        let epoch = try #require(try await a.tryAcquire(candidate: live, ttlMs: 60_000))
        #expect(try await b.tryAcquire(candidate: twin, ttlMs: 60_000) == nil, "a live namesake's lease was taken")
        #expect(try await b.renew(candidate: twin, epoch: epoch, ttlMs: 60_000) == false, "a namesake renewed another instance's lease")
        try await b.resign(candidate: twin, epoch: epoch)
        #expect(try await a.renew(candidate: live, epoch: epoch, ttlMs: 60_000), "a namesake's resignation freed another instance's lease")
        #expect(try await b.tryAcquire(candidate: twin, ttlMs: 60_000) == nil)
    }

    @Test("A restarted coordinator takes its same-named predecessor's lease at once when that process is gone, not another name's")
    func restartTakesOverFromADeadPredecessor() async throws {
        let path = scratchFile()
        let store = try await SQLiteLeadership(path: path)
        let dead = try Self.instanceOfAReapedProcess()
        let predecessor = LeaderCandidate(name: "coordinator", instance: dead)
        let epoch = try #require(try await store.tryAcquire(candidate: predecessor, ttlMs: 60_000))
        #expect(try await store.tryAcquire(candidate: LeaderCandidate(name: "other"), ttlMs: 60_000) == nil,
                "another name must wait for the lease to expire")
        let restarted = LeaderCandidate(name: "coordinator")
        #expect(try await store.tryAcquire(candidate: restarted, ttlMs: 60_000) == epoch + 1, "the restart did not take over at once")
        #expect(try await store.renew(candidate: predecessor, epoch: epoch, ttlMs: 60_000) == false)
    }

    @Test("Only a process of this host key that is provably gone counts as gone")
    func goneMeansProvablyGone() throws {
        let me = ProcessIdentity.current
        #expect(!me.isGone(me.newInstance()), "this process is alive")
        #expect(!me.isGone(Self.otherInstanceOfThisProcess()), "the same pid and start time is a live process")
        #expect(me.isGone(try Self.instanceOfAReapedProcess()))
        let fields = me.newInstance().split(separator: " ")
        #expect(!me.isGone("elsewhere/boot/ns 1 1 X"), "another host's instance is never provably gone")
        #expect(!me.isGone(""), "an instance from before instances (an old state file) is never provably gone")
        #expect(!me.isGone("\(fields[0]) \(getpid()) \(fields[2])"), "a malformed instance is never provably gone")
    }

    /// Another instance of this live process, as a namesake started beside it would be.
    static func otherInstanceOfThisProcess() -> String { ProcessIdentity.current.newInstance() }

    /// The instance a process of this host had that has exited and been reaped (its pid is gone).
    static func instanceOfAReapedProcess() throws -> String {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/sleep")
        child.arguments = ["30"]
        try child.run()
        let stat = try String(contentsOfFile: "/proc/\(child.processIdentifier)/stat", encoding: .utf8)
        // SIGKILL: the test process's threads may have SIGTERM masked, which the child inherits
        // (`terminate()` then left it running for its 30 s, blocking a pool thread meanwhile).
        kill(child.processIdentifier, SIGKILL)
        child.waitUntilExit()
        let start = try #require(stat.split(separator: ")").last?.split(separator: " ").dropFirst(19).first)
        let fields = ProcessIdentity.current.newInstance().split(separator: " ")
        return "\(fields[0]) \(child.processIdentifier) \(start) \(UUID().uuidString)"
    }
}
