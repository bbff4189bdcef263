// The file sink's directory has one owner: a job and a checkpoint store, recorded in
// `_sluice_output` on the first start. Processes sharing one store (the workers of a cluster)
// are the same owner; another store or job is refused.

import Foundation
import SluiceConnectors
import SluiceCore
import SluiceStorage
import Testing

@Suite("File sink ownership") struct FileSinkOwnershipTests {
    static func scratch() throws -> String {
        let dir = NSTemporaryDirectory() + "sluice-file-owner-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func processesSharingAStoreAreOneOwnerAndOthersAreRefused() async throws {
        let root = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let out = (root as NSString).appendingPathComponent("out")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let statePath = (root as NSString).appendingPathComponent("state.db")
        // Two workers: each opens the shared store and the sink on its own.
        let ids = try await [CheckpointStore(path: statePath).storeID(), CheckpointStore(path: statePath).storeID()]
        #expect(ids[0] == ids[1], "one store, one id")
        let owner = SinkOwner(job: "bids-tumbling", fingerprint: "f1", store: ids[0])
        for _ in 0..<2 {
            let sink = FileSink(directory: out, pipeline: .bidsTumbling)
            try sink.admit(SinkOwner(job: owner.job, fingerprint: owner.fingerprint), statePath: statePath)
            try sink.admit(owner, statePath: statePath)
        }
        let manifest = try String(contentsOfFile: (out as NSString).appendingPathComponent("_sluice_output"), encoding: .utf8)
        #expect(manifest.contains(ids[0]) && manifest.contains("bids-tumbling"), "\(manifest)")

        let otherStore = try await CheckpointStore(path: (root as NSString).appendingPathComponent("other.db")).storeID()
        #expect(otherStore != ids[0])
        let sink = FileSink(directory: out, pipeline: .bidsTumbling)
        #expect(throws: SinkError.self) { try sink.admit(SinkOwner(job: owner.job, fingerprint: "f1", store: otherStore), statePath: statePath) }
        #expect(throws: SinkError.self) { try sink.admit(SinkOwner(job: "other", fingerprint: "f2"), statePath: statePath) }
        #expect(throws: SinkError.self) { try sink.admit(SinkOwner(job: owner.job, fingerprint: "f2", store: ids[0]), statePath: statePath) }
    }

    @Test func theDefaultStoreInTheDirectoryIsNotForeign() async throws {
        let out = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: out) }
        // A crash after the store was created in the directory, before the manifest was written.
        let statePath = (out as NSString).appendingPathComponent("_sluice_state.db")
        let id = try await CheckpointStore(path: statePath).storeID()
        let sink = FileSink(directory: out, pipeline: .bidsTumbling)
        try sink.admit(SinkOwner(job: "j", fingerprint: "f", store: id), statePath: statePath)
        // The same files are foreign to a run whose store is elsewhere.
        let other = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: other) }
        try FileManager.default.copyItem(atPath: statePath, toPath: (other as NSString).appendingPathComponent("_sluice_state.db"))
        let elsewhere = FileSink(directory: other, pipeline: .bidsTumbling)
        #expect(throws: SinkError.self) { try elsewhere.admit(SinkOwner(job: "j", fingerprint: "f"), statePath: "/tmp/elsewhere.db") }
    }
}
