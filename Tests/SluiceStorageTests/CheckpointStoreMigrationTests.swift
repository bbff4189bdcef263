import Foundation
import SluiceStorage
import Testing

/// Stores made by earlier code (Fixtures/, see its README) open and migrate, keeping their
/// checkpoints; a store of a newer version is refused.
@Suite struct CheckpointStoreMigrationTests {
    /// A scratch copy of a fixture (opening a store writes to it).
    static func copy(_ fixture: String) throws -> String {
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/\(fixture)")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-migration-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let target = dir.appendingPathComponent(fixture)
        try FileManager.default.copyItem(at: source, to: target)
        return target.path
    }

    static func storedVersion(_ path: String) throws -> String? {
        let db = try SQLiteDatabase(path: path)
        let stmt = try db.prepare("SELECT value FROM sluice_meta WHERE key = 'schema_version'")
        defer { stmt.reset() }
        return try stmt.step() ? stmt.string(0) : nil
    }

    /// What both fixtures hold: two partitions, two checkpoints each at offset 2,000, the newer finished.
    static func expectFixtureCheckpoints(_ store: CheckpointStore, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        for partition in 0..<2 {
            let checkpoints = try await store.checkpoints(partition: partition)
            #expect(checkpoints.map(\.seq).sorted() == [1, 2], "partition \(partition): \(checkpoints.map(\.seq))", sourceLocation: sourceLocation)
            #expect(checkpoints.allSatisfy { $0.checksumMatches && $0.epoch == 1 && $0.offset == 2_000 && !$0.state.isEmpty },
                    "partition \(partition): a checkpoint lost or damaged by the migration", sourceLocation: sourceLocation)
            #expect(checkpoints.first { $0.seq == 2 }?.finished == true, sourceLocation: sourceLocation)
        }
        #expect(try await store.commitLog().count == 4, sourceLocation: sourceLocation)
    }

    @Test("A version-1 store opens, migrates to the current version, and keeps its checkpoints, now checksummed")
    func versionOneMigrates() async throws {
        let path = try Self.copy("checkpoints-v1.db")
        #expect(try Self.storedVersion(path) == "1")
        let store = try CheckpointStore(path: path)
        #expect(try Self.storedVersion(path) == String(CheckpointStore.schemaVersion))
        try await Self.expectFixtureCheckpoints(store)
        // The store works on: a claim of the next epoch and its log.
        #expect(try await store.claim(partition: 0, epoch: 2))
        // Opening it again applies nothing twice.
        let reopened = try CheckpointStore(path: path)
        #expect(try await reopened.epoch(partition: 0) == 2)
        #expect(try await reopened.checkpoints(partition: 1).count == 2)
    }

    @Test("A version-2 store made by the code before the migration list opens unchanged")
    func versionTwoOpens() async throws {
        let path = try Self.copy("checkpoints-v2.db")
        #expect(try Self.storedVersion(path) == "2")
        let store = try CheckpointStore(path: path)
        #expect(try Self.storedVersion(path) == "2")
        try await Self.expectFixtureCheckpoints(store)
    }

    @Test("A store of a newer schema version is refused, naming the version and the fix")
    func newerVersionIsRefused() throws {
        let path = try Self.copy("checkpoints-v2.db")
        try SQLiteDatabase(path: path).execute("UPDATE sluice_meta SET value = '99' WHERE key = 'schema_version'")
        do {
            _ = try CheckpointStore(path: path)
            Issue.record("a version-99 store was opened")
        } catch {
            let message = "\(error)"
            #expect(message.contains("schema version 99") && message.contains("upgrade sluice"), "\(message)")
        }
    }
}
