import ArgumentParser
import Foundation
import SluiceCore
import SluiceSimulation

/// `sluice sim`: the deterministic simulator of the lease protocol (SluiceSimulation).
struct Sim: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sim",
        abstract: "Run the deterministic simulator: the real coordinator and worker cores under seeded faults, invariants after every step.",
        discussion: "`sluice sim --seeds 10000` runs seeds 1…10000 (`--from S` starts at S); `sluice sim --seed N --trace` reproduces one schedule exactly with its readable trace. Exit 1 if any invariant broke.")

    @Option(help: "How many seeds to run (from --from on).") var seeds: Int?
    @Option(help: "The first seed of --seeds.") var from: UInt64 = 1
    @Option(help: "Run this one seed.") var seed: UInt64?
    @Flag(help: "Print the readable trace of --seed (or of the first failure).") var trace = false
    @Option(help: "Stop after this many failed schedules.") var maxFailures: Int = 1
    @Flag(help: "Every schedule commits its output to Kafka through the real exactly-once sink on the modelled transaction coordinator (without it, every 10th seed does).") var kafkaSink = false
    @Flag(help: "Every schedule reads a modelled CDC source (a slot per partition, confirmed one checkpoint behind) and has corrupt checkpoints to fall back past (without it, seeds ending in 5 do).") var cdcSource = false
    @Option(name: .customLong("plant"), help: ArgumentHelp("A planted bug (debug builds only): \(PlantedBug.allCases.map(\.rawValue).joined(separator: ", ")).")) var plant: [String] = []

    func run() throws {
        var config = SimConfig()
        for name in plant {
            guard let bug = PlantedBug(rawValue: name) else { throw ValidationError("unknown bug '\(name)'; one of \(PlantedBug.allCases.map(\.rawValue).joined(separator: ", "))") }
            #if !DEBUG
            throw ValidationError("--plant needs a debug build (planted bugs are compiled out of release builds)")
            #endif
            config.plantedBugs.insert(bug)
        }
        config.kafkaSink = kafkaSink || config.plantedBugs.contains { $0.needsKafkaSink }
        config.cdcSource = cdcSource || config.plantedBugs.contains { $0.needsCdcSource }
        let kafkaFlag = (config.kafkaSink ? " --kafka-sink" : "") + (config.cdcSource ? " --cdc-source" : "")
        if let seed {
            config.trace = trace
            let result = Simulator.run(seed: seed, config: config)
            if trace { for line in result.trace { print(line) } }
            print("seed \(seed): \(result.passed ? "PASS" : "FAIL"), \(result.steps) steps, \(result.faults) faults, \(result.commits) commits, \(result.simulatedMs) simulated ms"
                  + (result.kafkaSink ? "; Kafka sink: \(result.kafkaCommits) transactions committed, \(result.kafkaAborts) aborted" : ""))
            for v in result.violations { print("  \(v)") }
            if !result.passed { throw ExitCode(1) }
            return
        }
        guard let count = seeds, count > 0 else { throw ValidationError("give --seeds N or --seed N") }
        let clock = ContinuousClock()
        let started = clock.now
        let summary = Simulator.runSeeds(from: from, count: count, config: config, maxFailures: max(1, maxFailures)) { partial in
            FileHandle.standardError.write(Data("sim: \(partial.schedules) schedules, \(partial.failures.count) failed\n".utf8))
        }
        let elapsed = clock.now - started
        let seconds = max(1e-9, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        #if DEBUG
        let build = "debug"
        #else
        let build = "release"
        #endif
        print("sim: seeds \(from)…\(from &+ UInt64(summary.schedules) &- 1): \(summary.schedules) schedules, \(summary.failures.count) failed")
        print("sim: \(summary.steps) steps, \(summary.faults) faults, \(summary.commits) commits, \(summary.simulatedMs / 1_000) simulated s in \(String(format: "%.2f", seconds)) s (\(build))")
        print("sim: \(String(format: "%.0f", Double(summary.schedules) / seconds)) schedules/s, \(String(format: "%.0f", Double(summary.faults) / seconds)) faults/s, \(String(format: "%.0f", Double(summary.steps) / seconds)) steps/s")
        print("sim: Kafka sink in \(summary.kafkaSchedules) schedules: \(summary.kafkaCommits) transactions committed, \(summary.kafkaAborts) aborted")
        print("sim: CDC source in \(summary.cdcSchedules) schedules: \(summary.cdcFallbacks) restarts fell back past a corrupt checkpoint")
        print("sim: faults by kind: " + summary.faultsByKind.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        for failure in summary.failures {
            print("FAIL seed \(failure.seed):")
            for v in failure.violations { print("  \(v)") }
            var traced = config
            traced.trace = true
            let again = Simulator.run(seed: failure.seed, config: traced)
            print("  last steps of its trace (all of it: sluice sim --seed \(failure.seed) --trace\(kafkaFlag)\(plant.map { " --plant \($0)" }.joined())):")
            for line in again.trace.suffix(40) { print("    \(line)") }
        }
        if !summary.failures.isEmpty { throw ExitCode(1) }
    }
}
