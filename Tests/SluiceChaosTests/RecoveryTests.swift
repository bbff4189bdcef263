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

    /// A commit of the old epoch seen just after a kill was made before it: recovery runs to the
    /// new owner's first commit.
    @Test func aCommitInFlightAtTheKillDoesNotCountAsRecovery() {
        var observations = Observations()
        for (t, epoch, to) in [(9.0, Int64(1), Int64(100)), (10.0, 1, 200), (15.125, 1, 300), (21.5, 2, 400), (22.5, 2, 500)] {
            observations.commits.append(.init(t: t, partition: 3, seq: to / 100, epoch: epoch, toOffset: to))
        }
        var faults = [FaultRecord(index: 0, kind: .killWorker, target: "worker-2", summary: "kill", plannedAt: 15, injectedAt: 15,
                                  healedAt: 20, affected: [3], notes: [], recoverySeconds: nil, perPartition: [:])]
        RecoveryAnalysis.analyze(&faults, observations: observations, ends: [3: 1_000])
        #expect(faults[0].recoverySeconds == 6.5)
        #expect(RecoveryAnalysis.check(faults, bound: 6).passed == false)
        #expect(RecoveryAnalysis.check(faults, bound: 7).passed)
    }
}
