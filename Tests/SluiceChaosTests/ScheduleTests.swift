import Foundation
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

    // MARK: schedules drawn before `concurrency` and the Kafka kinds existed

    /// chaos/suites/random.yaml's nemesis (its workload does not enter the draw).
    private static let randomSuite = """
        name: random
        store: sqlite
        topology: {workers: 3, partitions: 8, lease_ttl_ms: 6000, heartbeat_ms: 1000}
        random:
          seed: 1
          start: 8
          until: 110
          gap_s: [4, 10]
          duration_s: [3, 12]
          kinds: [kill_worker, kill_coordinator, pause_worker, cut_worker, add_worker, remove_worker, fill_disk]
          min_workers: 2
          max_workers: 5
        """

    private func lines(_ schedule: [FaultSpec]) -> String {
        schedule.map { String(format: "%.1f ", $0.at) + $0.summary }.joined(separator: "\n")
    }

    /// Printed by the harness before the overlapping nemesis (`sluice chaos run … --seed N` logs the
    /// schedule): one lane must draw exactly these again, so older suites keep their schedules.
    @Test func oneLaneDrawsTheSchedulesOfOlderSuitesUnchanged() throws {
        let random = try Suite.parse(yaml: Self.randomSuite)
        #expect(random.random?.concurrency == 1)
        #expect(lines(Schedule.build(random, seed: 1)) == """
            8.0 pause_worker worker-1 for 7.7 s
            22.5 add_worker
            31.6 kill_coordinator restart after 4.9 s
            42.7 fill_disk worker-3 for 5 s
            52.6 pause_worker worker-1 for 10 s
            67.0 pause_worker worker-4 for 10.7 s
            83.3 kill_coordinator restart after 4.7 s
            95.4 pause_worker worker-2 for 9 s
            """)
        #expect(lines(Schedule.build(random, seed: 7)) == """
            8.0 add_worker
            17.4 fill_disk worker-4 for 9.8 s
            32.7 kill_coordinator restart after 2.2 s
            42.7 fill_disk worker-1 for 3.4 s
            50.7 kill_coordinator restart after 1.8 s
            59.4 pause_worker worker-2 for 9.8 s
            76.1 fill_disk worker-2 for 7.6 s
            91.1 kill_worker worker-3 restart after 1.4 s
            97.1 fill_disk worker-3 for 9.5 s
            """)
        #expect(lines(Schedule.build(try nemesis(seed: 5))) == """
            5.0 kill_worker worker-1 restart after 3.3 s
            10.7 cut_worker worker-3 blackhole upstream for 5.1 s
            18.6 cut_worker worker-1 bandwidth 5120 B/s for 3.7 s
            24.4 remove_worker worker-1
            26.9 fill_disk worker-3 for 3.7 s
            32.9 kill_coordinator restart after 3.8 s
            39.2 kill_coordinator restart after 2.2 s
            43.4 pause_worker worker-3 for 4.8 s
            51.2 add_worker
            52.7 add_worker
            56.2 kill_coordinator restart after 2.1 s
            61.2 kill_worker worker-4 restart after 4.4 s
            68.7 kill_coordinator restart after 1.5 s
            74.2 kill_coordinator restart after 1.9 s
            78.3 kill_worker worker-4 restart after 1 s
            81.2 pause_worker worker-5 for 3.7 s
            88.1 fill_disk worker-2 for 3.9 s
            95.2 fill_disk worker-3 for 2.6 s
            99.0 remove_worker worker-3
            100.1 add_worker
            103.4 kill_coordinator restart after 3.7 s
            110.1 remove_worker worker-5
            111.6 add_worker
            114.4 fill_disk worker-7 for 5.6 s
            122.6 fill_disk worker-2 for 4.8 s
            129.8 kill_coordinator restart after 3.3 s
            136.8 fill_disk worker-4 for 5.8 s
            145.0 remove_worker worker-4
            146.0 add_worker
            148.3 pause_worker worker-2 for 2.9 s
            154.5 fill_disk worker-2 for 5.8 s
            161.4 cut_worker worker-8 reset for 2.4 s
            167.2 pause_worker worker-7 for 4.7 s
            175.5 fill_disk worker-7 for 3.7 s
            182.8 pause_worker worker-7 for 5.5 s
            190.0 kill_coordinator restart after 3.8 s
            197.7 remove_worker worker-2
            201.1 fill_disk worker-8 for 5.7 s
            210.1 add_worker
            213.8 remove_worker worker-6
            216.8 cut_worker worker-8 blackhole for 4.6 s
            224.5 remove_worker worker-9
            225.7 kill_worker worker-8 restart after 1.3 s
            229.6 fill_disk worker-7 for 3.3 s
            236.2 fill_disk worker-8 for 5.8 s
            243.4 kill_worker worker-7 restart after 3.9 s
            250.7 kill_coordinator restart after 3.8 s
            255.9 cut_worker worker-8 reset for 3.5 s
            261.6 kill_coordinator restart after 4.9 s
            269.7 kill_worker worker-7 restart after 2.6 s
            276.2 kill_worker worker-7 restart after 4 s
            283.9 kill_coordinator restart after 2.3 s
            288.0 kill_worker worker-7 restart after 2.9 s
            292.7 cut_worker worker-7 reset for 2.2 s
            296.2 cut_worker worker-7 bandwidth 1536 B/s downstream for 2.6 s
            """)
    }

    // MARK: overlapping faults

    private func soakLike(seed: UInt64, concurrency: Int = 3, kafka: Bool = true) throws -> Suite {
        try Suite.parse(yaml: """
            name: o
            store: postgres
            \(kafka ? "source: kafka" : "")
            topology: {workers: 4, partitions: 8, coordinators: 2}
            random:
              seed: \(seed)
              start: 5
              until: 900
              gap_s: [1, 5]
              duration_s: [2, 8]
              concurrency: \(concurrency)
              kinds: [kill_worker, kill_coordinator, pause_worker, cut_worker, add_worker, remove_worker, restart_store,
                      cut_worker_from_store\(kafka ? ", kafka_broker_down, kafka_leader_change, kafka_request_errors" : "")]
              min_workers: 3
              max_workers: 6
            """)
    }

    /// What a fault holds while it acts, as the nemesis counts it.
    private func held(_ f: FaultSpec) -> String? { Schedule.resource(f) }

    @Test func lanesOverlapButNeverOnTheSameWorkerOrLink() throws {
        var maxActive = 0
        var overlaps = 0
        for seed: UInt64 in 1...20 {
            let schedule = Schedule.build(try soakLike(seed: seed))
            var members = Membership(initial: 4)
            var active: [FaultSpec] = []   // acting at this fault's start
            var holding: [FaultSpec] = []  // still holding their worker or link (the margin past the heal)
            for fault in schedule {
                #expect(fault.at >= 5 && fault.at <= 900)
                active.removeAll { $0.healsAt <= fault.at }
                // A lane draws at unrounded times; `at` is rounded to 0.1 s.
                holding.removeAll { $0.healsAt + Schedule.overlapMargin <= fault.at + 0.051 }
                if !active.isEmpty { overlaps += 1 }
                maxActive = max(maxActive, active.count + 1)
                #expect(active.count < 3, "seed \(seed): \(fault.summary) at \(fault.at) with \(active.map(\.summary))")
                if let resource = held(fault) {
                    #expect(!holding.contains { held($0) == resource }, "seed \(seed): \(fault.summary) on \(resource) while another holds it")
                }
                if let target = fault.target { #expect(members.alive.contains(target), "seed \(seed): \(fault.summary)") }
                if fault.kind == .kafkaLeaderChange, let down = holding.first(where: { $0.kind == .kafkaBrokerDown }) {
                    #expect(fault.broker != down.broker, "seed \(seed): a leader moved to broker \(fault.broker ?? 0), which is down")
                }
                members.apply(fault)
                #expect(members.alive.count >= 3 && members.alive.count <= 6)
                if fault.kind.lasts || fault.restartAfter != nil {
                    active.append(fault)
                    holding.append(fault)
                }
            }
            // Every kind on the menu shows up, the Kafka ones with their fields.
            #expect(Set(schedule.map(\.kind)).count == 11, "seed \(seed)")
            for f in schedule where f.kind.needsKafka {
                switch f.kind {
                case .kafkaBrokerDown: #expect((1...3).contains(f.broker ?? 0) && f.duration != nil)
                case .kafkaLeaderChange: #expect(f.topic == .input && (0..<8).contains(f.partition ?? -1) && (1...3).contains(f.broker ?? 0))
                default: #expect([.fetch, .listOffsets].contains(f.api) && (1...30).contains(f.count ?? 0))
                }
            }
            #expect(Set(schedule.compactMap { $0.network?.name }) == ["blackhole", "delay", "reset", "bandwidth"], "seed \(seed)")
        }
        #expect(maxActive == 3)
        #expect(overlaps > 1_000)
    }

    @Test func overlappingDrawsAreAFunctionOfTheSeed() throws {
        let a = Schedule.build(try soakLike(seed: 3))
        #expect(Schedule.build(try soakLike(seed: 3)) == a)
        #expect(Schedule.build(try soakLike(seed: 4)) != a)
        #expect(Schedule.build(try soakLike(seed: 4), seed: 3) == a)
        // More lanes, more faults in the same window.
        let one = Schedule.build(try soakLike(seed: 3, concurrency: 1)).count
        #expect(a.count > 2 * one)
        // Without a broker no Kafka kind is drawn (the suite refuses them: see SuiteParsingTests).
        #expect(!Schedule.build(try soakLike(seed: 3, kafka: false)).contains { $0.kind.needsKafka })
    }

    @Test func theSoakSuiteDrawsAThousandFaultsOfElevenKinds() throws {
        let suite = try Suite.load(path: #filePath.replacingOccurrences(of: "Tests/SluiceChaosTests/ScheduleTests.swift", with: "chaos/suites/soak.yaml"))
        let schedule = Schedule.build(suite)
        #expect(schedule.count >= 1_000)
        #expect(Set(schedule.map(\.kind)).count >= 11)
        #expect(suite.random?.concurrency ?? 1 > 1 && suite.topology.coordinators == 2)
        #expect((schedule.last?.at ?? .infinity) <= (suite.random?.until ?? 0))
    }
}
