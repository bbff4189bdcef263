import SluiceWorkload

/// The faults of one run in time order: the suite's fixed faults plus those its seeded nemesis
/// draws. A pure function of the suite (and the seed): the same seed gives the same schedule.
public enum Schedule {
    public static func build(_ suite: Suite, seed override: UInt64? = nil) -> [FaultSpec] {
        var faults = suite.faults
        if var nemesis = suite.random {
            if let override { nemesis.seed = override }
            faults += draw(nemesis, fixed: suite.faults, initialWorkers: suite.topology.workers)
        }
        // Stable: equal times keep the suite's order.
        return faults.enumerated().sorted { ($0.element.at, $0.offset) < ($1.element.at, $1.offset) }.map(\.element)
    }

    /// One fault at a time, each starting a drawn gap after the previous one healed, with targets
    /// drawn among the workers running at that moment (membership replayed as faults change it).
    static func draw(_ nemesis: Suite.RandomNemesis, fixed: [FaultSpec], initialWorkers: Int) -> [FaultSpec] {
        var rng = SplitMix64(seed: nemesis.seed ^ 0x6368_616F_735F_7631)  // "chaos_v1": apart from the workload's seeds
        var members = Membership(initial: initialWorkers)
        for fault in fixed.sorted(by: { $0.at < $1.at }) { members.apply(fault) }
        var drawn: [FaultSpec] = []
        var t = nemesis.start
        // Bounded: at most one fault per 0.1 s of the window, and at most 1,000.
        for _ in 0..<1_000 where t <= nemesis.until {
            let alive = members.alive.sorted { (Int($0.dropFirst(7)) ?? 0) < (Int($1.dropFirst(7)) ?? 0) }
            let feasible = nemesis.kinds.filter { kind in
                switch kind {
                case .removeWorker: alive.count > nemesis.minWorkers
                case .addWorker: alive.count < nemesis.maxWorkers
                case .killWorker, .pauseWorker, .cutWorker, .fillDisk, .cutWorkerFromStore: !alive.isEmpty
                case .killCoordinator, .restartStore: true
                case .kafkaBrokerDown, .kafkaLeaderChange, .kafkaRequestErrors: false  // refused in random.kinds
                }
            }
            guard !feasible.isEmpty else { break }
            let kind = feasible[pick(feasible.count, &rng)]
            var fault = FaultSpec(at: (t * 10).rounded() / 10, kind: kind)
            if kind.needsTarget { fault.target = alive[pick(alive.count, &rng)] }
            if kind.lasts { fault.duration = uniform(nemesis.duration, &rng) }
            switch kind {
            case .killWorker, .killCoordinator, .restartStore:
                fault.restartAfter = uniform(1...5, &rng)
            case .cutWorker, .cutWorkerFromStore:
                let modes: [NetworkMode] = [.blackhole, .delay(ms: 50 + pick(450, &rng), jitterMs: pick(100, &rng)), .reset,
                                            .bandwidth(bytesPerSecond: 512 * (1 + pick(16, &rng)))]
                fault.network = modes[pick(modes.count, &rng)]
                if fault.network != .reset { fault.direction = Direction.allCases[pick(Direction.allCases.count, &rng)] }
            default:
                break
            }
            drawn.append(fault)
            members.apply(fault)
            t = fault.healsAt + uniform(nemesis.gap, &rng)
        }
        return drawn
    }

    private static func pick(_ n: Int, _ rng: inout SplitMix64) -> Int { Int(rng.next() % UInt64(max(1, n))) }

    /// A uniform draw in `range`, rounded to 0.1 s so that schedules print and compare plainly.
    private static func uniform(_ range: ClosedRange<Double>, _ rng: inout SplitMix64) -> Double {
        let unit = Double(rng.next() >> 11) / Double(1 << 53)
        return ((range.lowerBound + unit * (range.upperBound - range.lowerBound)) * 10).rounded() / 10
    }
}
