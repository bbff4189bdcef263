import Foundation
import SluiceCore
import SluiceSimulation
import Testing

/// The simulator's CI run: many seeds, every invariant after every step, and proof that it finds
/// each planted bug.
@Suite struct SimulationTests {
    /// Seeds in the CI run (`SLUICE_SIM_SEEDS` overrides).
    static let ciSeeds = Int(ProcessInfo.processInfo.environment["SLUICE_SIM_SEEDS"] ?? "") ?? 10_000

    @Test func ciSeedsKeepEveryInvariant() {
        let clock = ContinuousClock()
        let started = clock.now
        let summary = Simulator.runSeeds(from: 1, count: Self.ciSeeds, maxFailures: 3)
        let elapsed = clock.now - started
        print("sim: \(summary.schedules) schedules, \(summary.faults) faults, \(summary.steps) steps in \(elapsed)")
        for failure in summary.failures {
            Issue.record("seed \(failure.seed): \(failure.violations.map(\.description).joined(separator: "; ")) — reproduce: sluice sim --seed \(failure.seed) --trace")
        }
        #expect(summary.failures.isEmpty)
        #expect(summary.faults > summary.schedules)  // the schedules are not fault-free
    }

    @Test func aSeedReproducesItsScheduleExactly() {
        var config = SimConfig()
        config.trace = true
        let a = Simulator.run(seed: 42, config: config)
        let b = Simulator.run(seed: 42, config: config)
        #expect(a.trace == b.trace)
        #expect(a.trace.count > 50)
        #expect(a.steps == b.steps && a.faults == b.faults)
        let c = Simulator.run(seed: 43, config: config)
        #expect(a.trace != c.trace)
    }

    #if DEBUG
    /// Each planted bug is found within the limit; the seed and the number of schedules are printed
    /// (and recorded in the README's table).
    @Test(arguments: PlantedBug.allCases.filter { !$0.needsKafkaSink })
    func findsThePlantedBug(_ bug: PlantedBug) {
        var config = SimConfig()
        config.plantedBugs = [bug]
        config.cdcSource = bug.needsCdcSource
        let found = Simulator.firstFailure(from: 1, limit: 2_000, config: config)
        #expect(found != nil, "\(bug.rawValue) not found in 2,000 schedules")
        if let found {
            print("planted \(bug.rawValue): seed \(found.result.seed) after \(found.schedules) schedules: \(found.result.violations.first?.description ?? "")")
        }
    }
    #endif
}
