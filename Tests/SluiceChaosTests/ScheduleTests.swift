import Testing
@testable import SluiceChaos

@Suite struct ScheduleTests {
    private func nemesis(seed: UInt64) throws -> Suite {
        var suite = try Suite.parse(yaml: """
            name: r
            topology: {workers: 3}
            random: {seed: 5, start: 5, until: 300, gap_s: [1, 4], duration_s: [2, 6], min_workers: 2, max_workers: 4}
            """)
        suite.random?.seed = seed
        return suite
    }

    @Test func theSameSeedGivesTheSameSchedule() throws {
        let a = Schedule.build(try nemesis(seed: 5))
        let b = Schedule.build(try nemesis(seed: 5))
        #expect(a == b)
        #expect(a.count > 20)
        // --seed overrides the suite's.
        #expect(Schedule.build(try nemesis(seed: 9), seed: 5) == a)
        #expect(Schedule.build(try nemesis(seed: 5), seed: 6) != a)
    }

    @Test func drawnFaultsAreOneAtATimeWithLiveTargetsWithinTheBounds() throws {
        for seed: UInt64 in 1...20 {
            let suite = try nemesis(seed: seed)
            let schedule = Schedule.build(suite)
            var members = Membership(initial: 3)
            var previousEnd = 0.0
            for fault in schedule {
                #expect(fault.at >= 5 && fault.at <= 300)
                #expect(fault.at >= previousEnd, "seed \(seed): \(fault.summary) overlaps the one before")
                if let target = fault.target { #expect(members.alive.contains(target), "seed \(seed): \(fault.summary)") }
                members.apply(fault)
                #expect(members.alive.count >= 2 && members.alive.count <= 4)
                previousEnd = fault.healsAt
            }
            // Every kind on the menu shows up over a long enough window.
            #expect(Set(schedule.map(\.kind)).count >= 5, "seed \(seed)")
        }
    }
}
