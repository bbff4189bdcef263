import Foundation
import SluiceCoordinator
import SluiceStorage
import Testing

/// The coordinator's `--state` file from before its schema had versions opens and migrates.
@Suite struct CoordinatorStateMigrationTests {
    @Test("A state file from before versions: migrated to the current version; the leader epoch goes on from its own")
    func stateFromBeforeVersions() async throws {
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/coordinator-before-versions.db")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-coordinator-migration-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("coordinator.db").path
        try FileManager.default.copyItem(atPath: source.path, toPath: path)
        #expect(try SQLiteSchema.userVersion(SQLiteDatabase(path: path)) == 0)

        let ledger = try await SQLiteLeaseLedger(path: path)
        let leadership = try await SQLiteLeadership(path: path)
        #expect(try SQLiteSchema.userVersion(SQLiteDatabase(path: path)) == 2)
        #expect(try await leadership.holder()?.candidate == "fixture-coordinator")
        let epoch = try #require(try await leadership.tryAcquire(candidate: LeaderCandidate(name: "new"), ttlMs: 60_000))
        #expect(epoch == 2, "the fixture's leader epoch was 1 (and resigned)")
        try await ledger.write([LeaseRecord(partition: 0, epoch: 1, owner: "worker-1")], leaderEpoch: epoch)
        #expect(try await ledger.load() == [LeaseRecord(partition: 0, epoch: 1, owner: "worker-1")])
    }
}
