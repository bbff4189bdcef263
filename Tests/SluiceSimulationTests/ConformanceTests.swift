import Foundation
import SluiceCore
import SluiceSimulation
import SluiceStorage
import SluiceWorkload
import Testing

/// Writes nothing: the conformance tests compare the fenced commit itself.
struct NullWriter: CommitWriter {
    func createTables(in db: SQLiteDatabase) throws {}
    func write(_ output: PartitionOutput, partition: Int, seq: Int64, in db: SQLiteDatabase) throws {}
    func discard(partition: Int, after seq: Int64, in db: SQLiteDatabase) throws {}
}

/// The same claims and commits against the SQLite `CheckpointStore` and `SimCheckpointStore`: every
/// outcome (claimed or not; accepted, fenced, out of sequence) and the final commit and claim logs
/// must be equal, so the simulator's store keeps the real fenced-commit semantics.
@Suite struct StoreConformanceTests {
    enum Outcome: Equatable { case claimed(Bool), accepted, fenced(Int64), outOfSequence, other(String) }

    func realCommit(_ store: CheckpointStore, _ c: SimCheckpointStore.Commit) async -> Outcome {
        let checkpoint = Checkpoint(partition: c.partition, seq: c.seq, epoch: c.epoch, offset: c.to, position: c.to,
                                    watermark: 0, finished: c.finished, state: [])
        do {
            try await store.commit(checkpoint, fromOffset: c.from, output: PartitionOutput(width: 1), writer: NullWriter())
            return .accepted
        } catch let fenced as CommitFenced {
            return .fenced(fenced.currentEpoch)
        } catch {
            return "\(error)".contains("does not follow") ? .outOfSequence : .other("\(error)")
        }
    }

    func simCommit(_ store: inout SimCheckpointStore, _ c: SimCheckpointStore.Commit) -> Outcome {
        switch store.commit(c) {
        case .accepted: return .accepted
        case .fenced(let current): return .fenced(current)
        case .outOfSequence: return .outOfSequence
        }
    }

    @Test(arguments: [UInt64(1), 2, 3, 4, 5, 6, 7, 8])
    func sameOutcomesAsTheSQLiteStore(seed: UInt64) async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-sim-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let real = try CheckpointStore(path: dir.appendingPathComponent("store.db").path)
        var sim = SimCheckpointStore()
        var random = SplitMix64(seed: seed)
        var outcomes = (real: [Outcome](), sim: [Outcome]())
        for _ in 0..<200 {
            let p = Int.random(in: 0...1, using: &random)
            if Int.random(in: 0..<4, using: &random) == 0 {
                let epoch = Int64.random(in: 0...6, using: &random)
                outcomes.real.append(.claimed(try await real.claim(partition: p, epoch: epoch)))
                outcomes.sim.append(.claimed(sim.claim(partition: p, epoch: epoch)))
            } else {
                let last = sim.last(partition: p)
                // Mostly the next seq from the current epoch; sometimes a stale epoch, a repeated or a skipped seq.
                let seq = last.seq + [1, 1, 1, 1, 0, 2].randomElement(using: &random)!
                let epoch = sim.epoch(partition: p) - [0, 0, 0, 1].randomElement(using: &random)!
                let to = last.offset + Int64.random(in: 1...5, using: &random)
                let c = SimCheckpointStore.Commit(partition: p, seq: seq, epoch: epoch, from: last.offset, to: to, finished: false)
                outcomes.real.append(await realCommit(real, c))
                outcomes.sim.append(simCommit(&sim, c))
            }
        }
        #expect(outcomes.real == outcomes.sim)
        #expect(outcomes.sim.contains(.accepted))
        #expect(outcomes.sim.contains { if case .fenced = $0 { return true } else { return false } })
        #expect(outcomes.sim.contains(.outOfSequence))
        let realLog = try await real.commitLog().map { [Int64($0.partition), $0.seq, $0.epoch, $0.fromOffset, $0.toOffset] }
        let simLog = (0...1).flatMap { p in (sim.commits[p] ?? []).map { [Int64($0.partition), $0.seq, $0.epoch, $0.from, $0.to] } }
        #expect(realLog == simLog)
        let realClaims = try await real.claimLog().map { [Int64($0.partition), $0.epoch, $0.afterSeq] }
        let simClaims = sim.claims.map { [Int64($0.partition), $0.epoch, $0.afterSeq] }
        #expect(realClaims == simClaims)
        for p in 0...1 {
            #expect(try await real.epoch(partition: p) == sim.epoch(partition: p))
        }
    }
}
