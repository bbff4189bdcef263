import Foundation
import SluiceFuzzEntries
import Testing

/// The fuzz targets of the worker messages applied to the coordinator's core, replayed (CI does not fuzz): the seeds, every input in
/// fuzz/regressions (each once made the target crash, fixed since) and the kept corpus, through
/// the same entry function as the libFuzzer binary (scripts/fuzz). An input that traps fails the run.
@Suite struct FuzzRegressionTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    @Test(arguments: ["protocol"])
    func replay(target: String) throws {
        #expect(try FuzzTargets.replayAll(target, repository: Self.repository) > 0)
    }
}
