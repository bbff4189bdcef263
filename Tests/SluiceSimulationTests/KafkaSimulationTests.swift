import Foundation
import SluiceCore
import SluiceSimulation
import Testing

/// The Kafka sink in the simulator: the real `KafkaExactlyOnce` on the modelled transaction
/// coordinator under the simulator's faults and the sink's own (crashes and pauses at every step
/// of its protocol, broker outages), and proof that the Kafka checks find each planted bug.
@Suite struct KafkaSimulationTests {
    /// Seeds with the Kafka sink in the CI run (`SLUICE_SIM_KAFKA_SEEDS` overrides).
    static let kafkaSeeds = Int(ProcessInfo.processInfo.environment["SLUICE_SIM_KAFKA_SEEDS"] ?? "") ?? 500

    static var kafkaConfig: SimConfig {
        var config = SimConfig()
        config.kafkaSink = true
        return config
    }

    @Test func kafkaSeedsKeepEveryInvariant() {
        let clock = ContinuousClock()
        let started = clock.now
        let summary = Simulator.runSeeds(from: 1, count: Self.kafkaSeeds, config: Self.kafkaConfig, maxFailures: 3)
        let elapsed = clock.now - started
        print("sim --kafka-sink: \(summary.schedules) schedules, \(summary.faults) faults, \(summary.kafkaCommits) Kafka transactions committed, \(summary.kafkaAborts) aborted in \(elapsed)")
        for failure in summary.failures {
            Issue.record("seed \(failure.seed): \(failure.violations.map(\.description).joined(separator: "; ")) — reproduce: sluice sim --seed \(failure.seed) --trace --kafka-sink")
        }
        #expect(summary.failures.isEmpty)
        #expect(summary.kafkaSchedules == summary.schedules)
        #expect(summary.kafkaAborts > 0)  // the schedules reach the abort paths
        for kind in ["kafka-crash", "kafka-pause", "kafka-outage"] {
            #expect((summary.faultsByKind[kind] ?? 0) > 0, "no \(kind) fault in \(summary.schedules) schedules")
        }
    }

    /// The sink's fault points are reached: a crash or a pause at each step of its protocol.
    @Test func faultsHitEveryStepOfTheSinkProtocol() {
        var config = Self.kafkaConfig
        config.trace = true
        var steps: Set<String> = []
        for seed in UInt64(1)...200 {
            let result = Simulator.run(seed: seed, config: config)
            #expect(result.passed, "seed \(seed): \(result.violations)")
            for line in result.trace where line.contains("FAULT") && line.contains("at the sink's step") {
                for step in ["init", "read progress", "begin", "send 1/", "send progress", "commit", "abort",
                             "before publishing", "after publishing"] where line.contains(" \(step)") {
                    steps.insert(line.contains("recovery: ") ? "recovery: " + step : step)
                }
            }
        }
        // Every step but abort (reached only after an error inside a transaction), in a checkpoint's
        // publish and in recovery (which begins with init and the progress read, then publishes again).
        for step in ["recovery: init", "recovery: read progress", "recovery: begin", "recovery: send 1/", "recovery: send progress",
                     "recovery: commit", "begin", "send 1/", "send progress", "commit", "before publishing", "after publishing"] {
            #expect(steps.contains(step), "no crash or pause at the sink's step '\(step)' in seeds 1–200")
        }
    }

    @Test func aKafkaSeedReproducesItsScheduleExactly() {
        var config = Self.kafkaConfig
        config.trace = true
        let a = Simulator.run(seed: 7, config: config)
        let b = Simulator.run(seed: 7, config: config)
        #expect(a.trace == b.trace)
        #expect(a.trace.contains { $0.contains("committed transaction") })
    }

    #if DEBUG
    /// Each planted Kafka bug is found within the limit by a Kafka check; the seed and the number
    /// of schedules are printed (and recorded in the README's table).
    @Test(arguments: PlantedBug.allCases.filter(\.needsKafkaSink))
    func findsThePlantedKafkaBug(_ bug: PlantedBug) {
        var config = Self.kafkaConfig
        config.plantedBugs = [bug]
        let found = Simulator.firstFailure(from: 1, limit: 2_000, config: config)
        #expect(found != nil, "\(bug.rawValue) not found in 2,000 schedules")
        if let found {
            print("planted \(bug.rawValue): seed \(found.result.seed) after \(found.schedules) schedules: \(found.result.violations.first?.description ?? "")")
            #expect(found.result.violations.contains { $0.invariant.hasPrefix("kafka-") || $0.invariant == Invariant.liveness })
        }
    }
    #endif
}
