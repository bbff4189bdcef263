import Foundation
import SluiceStorage
import Testing
@testable import SluiceChaos

@Suite struct CommitLogChecksTests {
    typealias Commit = CheckpointStore.CommitRecord
    typealias Claim = CheckpointStore.ClaimRecord

    private func c(_ p: Int, _ seq: Int64, _ epoch: Int64, _ from: Int64, _ to: Int64) -> Commit {
        Commit(partition: p, seq: seq, epoch: epoch, fromOffset: from, toOffset: to, rows: 1)
    }

    /// Partition 0 moves from epoch 1 to epoch 2 after seq 2; partition 1 stays with epoch 1.
    private let good = [
        Commit(partition: 0, seq: 1, epoch: 1, fromOffset: 0, toOffset: 100, rows: 3),
        Commit(partition: 0, seq: 2, epoch: 1, fromOffset: 100, toOffset: 250, rows: 3),
        Commit(partition: 0, seq: 3, epoch: 2, fromOffset: 250, toOffset: 400, rows: 3),
        Commit(partition: 1, seq: 1, epoch: 1, fromOffset: 0, toOffset: 300, rows: 3),
    ]
    private let goodClaims = [Claim(partition: 0, epoch: 1, afterSeq: 0), Claim(partition: 1, epoch: 1, afterSeq: 0),
                              Claim(partition: 0, epoch: 2, afterSeq: 2)]

    @Test func aSoundLogPasses() {
        #expect(CommitLogChecks.chain(good).passed)
        #expect(CommitLogChecks.epochs(good).passed)
        #expect(CommitLogChecks.fencing(commits: good, claims: goodClaims).passed)
        #expect(CommitLogChecks.reachedEnd(good, expected: [0: 400, 1: 300]).passed)
    }

    @Test func aGapAnOverlapAndAMissingSeqAreFlagged() {
        let gap = [c(0, 1, 1, 0, 100), c(0, 2, 1, 120, 200)]
        let result = CommitLogChecks.chain(gap)
        #expect(!result.passed)
        #expect(result.evidence.contains { $0.contains("partition 0: seq 2 covers [120, 200) but the chain stood at 100 (a gap)") })
        let overlap = CommitLogChecks.chain([c(0, 1, 1, 0, 100), c(0, 2, 1, 90, 200)])
        #expect(!overlap.passed && overlap.evidence.contains { $0.contains("(an overlap)") })
        let skipped = CommitLogChecks.chain([c(3, 1, 1, 0, 100), c(3, 3, 1, 100, 200)])
        #expect(!skipped.passed && skipped.evidence.contains { $0.contains("partition 3: seq 3 follows 1 (expected 2)") })
        let notFromZero = CommitLogChecks.chain([c(1, 1, 1, 5, 100)])
        #expect(!notFromZero.passed)
    }

    @Test func anEpochGoingDownIsFlagged() {
        let log = [c(0, 1, 2, 0, 100), c(0, 2, 3, 100, 200), c(0, 3, 2, 200, 300)]
        let result = CommitLogChecks.epochs(log)
        #expect(!result.passed)
        #expect(result.evidence.contains { $0.contains("partition 0: seq 3 has epoch 2 after epoch 3") })
    }

    @Test func aCommitFromAFencedEpochIsFlaggedEvenWhenTheChainIsSound() {
        // Epoch 2 claimed the partition after seq 1; the old owner (epoch 1) still committed seq 2.
        let log = [c(0, 1, 1, 0, 100), c(0, 2, 1, 100, 200), c(0, 3, 2, 200, 300)]
        let claims = [Claim(partition: 0, epoch: 1, afterSeq: 0), Claim(partition: 0, epoch: 2, afterSeq: 1)]
        #expect(CommitLogChecks.chain(log).passed)
        #expect(CommitLogChecks.epochs(log).passed)
        let result = CommitLogChecks.fencing(commits: log, claims: claims)
        #expect(!result.passed)
        #expect(result.evidence.contains { $0.contains("partition 0: seq 2 committed by epoch 1 after epoch 2 had claimed the partition") })
        // A commit with no claim before it, and one by an epoch that never claimed.
        let unclaimed = CommitLogChecks.fencing(commits: [c(5, 1, 1, 0, 10)], claims: [])
        #expect(!unclaimed.passed && unclaimed.evidence.contains { $0.contains("no claim before it") })
        let unknown = CommitLogChecks.fencing(commits: [c(5, 1, 4, 0, 10)], claims: [Claim(partition: 5, epoch: 3, afterSeq: 0)])
        #expect(!unknown.passed && unknown.evidence.contains { $0.contains("never claimed") })
    }

    @Test func aPartitionShortOfItsEndIsFlagged() {
        let result = CommitLogChecks.reachedEnd(good, expected: [0: 400, 1: 350, 2: 10])
        #expect(!result.passed)
        #expect(result.evidence.contains("partition 1: committed up to 300 of 350"))
        #expect(result.evidence.contains("partition 2: committed up to 0 of 10"))
    }

    @Test func theClaimsLogRecordsWhereEachClaimHappened() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-chaos-claims-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try CheckpointStore(path: dir.appendingPathComponent("s.db").path)
        #expect(try await store.claim(partition: 0, epoch: 1))
        #expect(try await store.claim(partition: 0, epoch: 3))
        #expect(try await !store.claim(partition: 0, epoch: 2))  // refused: not logged
        #expect(try await store.claimNext(partition: 1) == 1)
        #expect(try await store.claimLog() == [Claim(partition: 0, epoch: 1, afterSeq: 0), Claim(partition: 0, epoch: 3, afterSeq: 0),
                                               Claim(partition: 1, epoch: 1, afterSeq: 0)])
    }
}
