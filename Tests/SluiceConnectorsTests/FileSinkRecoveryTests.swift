// Recovery deletes only the file sink's own uncommitted files: exact names it publishes
// (`results|late|dead-<12 digits>.csv`) beyond the committed seq, and exact names it stages.

import Foundation
import SluiceConnectors
import SluiceCore
import SluiceStorage
import Testing

@Suite("File sink recovery") struct FileSinkRecoveryTests {
    @Test func recoveryRemovesOnlyItsOwnUncommittedNames() throws {
        let dir = NSTemporaryDirectory() + "sluice-file-recovery-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let part = FileSink.partitionDirectory(dir, partition: 0)
        let staging = (part as NSString).appendingPathComponent(".staging")
        try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: true)
        let foreign = ["budget-2024.csv", "report-7.csv", "results-42.csv", "dead-0000000000099.csv", "late-00000000000x.csv", "notes.txt"]
        let own = ["results-000000000002.csv", "late-000000000003.csv", "dead-000000000003.csv"]
        let committed = ["results-000000000001.csv"]
        for name in foreign + own + committed {
            try Data("x\n".utf8).write(to: URL(fileURLWithPath: (part as NSString).appendingPathComponent(name)))
        }
        let foreignStaged = ["e1-budget-2024.csv", "keep.tmp", "e-results-000000000002.csv"]
        let ownStaged = ["e7-results-000000000002.csv", "e12-dead-000000000005.csv"]
        for name in foreignStaged + ownStaged {
            try Data("x\n".utf8).write(to: URL(fileURLWithPath: (staging as NSString).appendingPathComponent(name)))
        }

        let sink = FileSink(directory: dir, pipeline: .bidsTumbling)
        let last = Checkpoint(partition: 0, seq: 1, epoch: 1, offset: 0, position: 0, watermark: 0, finished: false,
                              state: [], files: committed)
        try sink.recover(partition: 0, last: last)

        let left = Set(try FileManager.default.contentsOfDirectory(atPath: part))
        #expect(left == Set(foreign + committed + [".staging"]), "left in the partition directory: \(left.sorted())")
        let leftStaged = Set(try FileManager.default.contentsOfDirectory(atPath: staging))
        #expect(leftStaged == Set(foreignStaged), "left in .staging: \(leftStaged.sorted())")
    }
}
