import Testing
@testable import SluiceChaos

@Suite struct RecoveryTests {
    @Test func theStallRunsFromTheFaultToTheFirstCommitAndCoversLaterStallsWhileItLasts() {
        // Commits every second, then a 7 s hole after a kill at 10.5.
        let times = [8.0, 9, 10, 17.5, 18.5, 19.5]
        #expect(RecoveryAnalysis.stall(commitTimes: times, finishedAt: nil, start: 10.5, end: 10.5) == 7.0)
        // A fault lasting until 19: the worst stretch inside it counts.
        let stalls = [8.0, 9, 10, 12, 18, 19, 20]
        #expect(RecoveryAnalysis.stall(commitTimes: stalls, finishedAt: nil, start: 10.5, end: 19) == 6)
        // Never committed again: no recovery.
        #expect(RecoveryAnalysis.stall(commitTimes: [1, 2], finishedAt: nil, start: 5, end: 8) == nil)
        // Finished before the fault: untouched.
        #expect(RecoveryAnalysis.stall(commitTimes: [1, 2], finishedAt: 2, start: 5, end: 8) == 0)
        // Finished during the fault: the stall ends with its last commit.
        #expect(RecoveryAnalysis.stall(commitTimes: [1, 2, 6], finishedAt: 6, start: 5, end: 20) == 1)
    }
}
