import SluiceWorkload

/// The faults of one run in time order: the suite's fixed faults plus those its seeded nemesis
/// draws. A pure function of the suite (and the seed): the same seed gives the same schedule.
public enum Schedule {
    public static func build(_ suite: Suite, seed override: UInt64? = nil) -> [FaultSpec] {
        var faults = suite.faults
        if var nemesis = suite.random {
            if let override { nemesis.seed = override }
            faults += draw(nemesis, fixed: suite.faults, initialWorkers: suite.topology.workers, kafka: KafkaMenu(suite))
        }
        // Stable: equal times keep the suite's order.
        return faults.enumerated().sorted { ($0.element.at, $0.offset) < ($1.element.at, $1.offset) }.map(\.element)
    }

    /// What the nemesis may draw for the Kafka kinds: the broker's size and the topics the suite has.
    struct KafkaMenu {
        var brokers: Int
        var partitions: Int
        /// The topics a leader change may move (input with `source: kafka`; output, progress with `sink: kafka`).
        var topics: [KafkaTopicRole]
        /// The APIs whose requests may fail, each with the retriable errors its clients retry on.
        var apis: [(KafkaAPI, [KafkaRetriableError])]

        init?(_ suite: Suite) {
            guard suite.usesKafka else { return nil }
            brokers = suite.kafka.brokers
            partitions = suite.topology.partitions
            topics = []
            apis = []
            if suite.source == .kafka {
                topics.append(.input)
                apis += [(.fetch, [.notLeaderOrFollower, .requestTimedOut, .leaderNotAvailable]),
                         (.listOffsets, [.notLeaderOrFollower, .requestTimedOut, .leaderNotAvailable])]
            }
            if suite.sink == .kafka {
                topics += [.output, .progress]
                apis += [(.produce, [.requestTimedOut, .notLeaderOrFollower, .notEnoughReplicas]),
                         (.endTxn, [.coordinatorLoadInProgress, .concurrentTransactions]),
                         (.addPartitionsToTxn, [.coordinatorLoadInProgress, .concurrentTransactions])]
            }
        }
    }

    /// What a drawn fault holds while it acts: a worker (every fault on a worker and its links), the
    /// coordinator, the store, the broker's outage slot. Two overlapping faults never hold the same.
    static func resource(_ fault: FaultSpec) -> String? {
        switch fault.kind {
        case .killCoordinator: "coordinator"
        case .restartStore: "store"
        case .kafkaBrokerDown: "kafka-broker-down"
        case .addWorker, .kafkaLeaderChange, .kafkaRequestErrors: nil
        default: fault.target
        }
    }

    /// A resource stays held this long past its fault's planned heal when faults overlap: the
    /// harness injects and heals on a 100 ms loop, and a kill's restart or a store's start takes a
    /// moment, so the next fault on the same worker or link never lands on the previous one's heal.
    static let overlapMargin = 1.0

    /// `concurrency` lanes (1: one fault at a time, as before). Each lane draws a fault, waits for
    /// it to heal and a drawn gap, and draws the next; lanes are served in time order (ties: the
    /// lower lane), so one seed gives one schedule. A fault's target is a worker running at that
    /// moment (membership replayed as faults change it) that no other lane's fault holds (see
    /// `resource`). With one lane the draws, and so the schedules of older suites, are unchanged.
    static func draw(_ nemesis: Suite.RandomNemesis, fixed: [FaultSpec], initialWorkers: Int, kafka: KafkaMenu? = nil) -> [FaultSpec] {
        var rng = SplitMix64(seed: nemesis.seed ^ 0x6368_616F_735F_7631)  // "chaos_v1": apart from the workload's seeds
        var members = Membership(initial: initialWorkers)
        for fault in fixed.sorted(by: { $0.at < $1.at }) { members.apply(fault) }
        var drawn: [FaultSpec] = []
        let lanes = max(1, nemesis.concurrency)
        // Lane 0 starts at `start`; the others a drawn part of a gap later each, so they do not all fire at once.
        var next = [nemesis.start]
        if lanes > 1 {
            for i in 1..<lanes { next.append(nemesis.start + uniform(nemesis.gap, &rng) * Double(i) / Double(lanes)) }
        }
        var held: [String: Double] = [:]   // resource → until when (overlapping lanes only)
        var brokerDown: (broker: Int, until: Double)?
        // Bounded: at most `maxFaults` faults, and a bounded number of lane turns.
        for _ in 0..<(maxFaults * 4) where drawn.count < maxFaults {
            guard let lane = next.indices.min(by: { (next[$0], $0) < (next[$1], $1) }), next[lane] <= nemesis.until else { break }
            let t = next[lane]
            held = held.filter { $0.value > t }
            if let down = brokerDown, down.until <= t { brokerDown = nil }
            let alive = members.alive.sorted { (Int($0.dropFirst(7)) ?? 0) < (Int($1.dropFirst(7)) ?? 0) }
            let free = alive.filter { held[$0] == nil }
            let feasible = nemesis.kinds.filter { kind in
                switch kind {
                case .removeWorker: alive.count > nemesis.minWorkers && !free.isEmpty
                case .addWorker: alive.count < nemesis.maxWorkers
                case .killWorker, .pauseWorker, .cutWorker, .fillDisk, .cutWorkerFromStore: !free.isEmpty
                case .killCoordinator: held["coordinator"] == nil
                case .restartStore: held["store"] == nil
                case .kafkaBrokerDown: kafka.map { $0.brokers > 1 } == true && held["kafka-broker-down"] == nil
                case .kafkaLeaderChange: kafka.map { !$0.topics.isEmpty } == true
                case .kafkaRequestErrors: kafka.map { !$0.apis.isEmpty } == true
                }
            }
            guard !feasible.isEmpty else {
                // Nothing this lane may do now (everything it could hit is held): try again a gap later.
                guard lanes > 1 else { break }
                next[lane] = t + max(0.5, nemesis.gap.lowerBound)
                continue
            }
            let kind = feasible[pick(feasible.count, &rng)]
            var fault = FaultSpec(at: (t * 10).rounded() / 10, kind: kind)
            if kind.needsTarget { fault.target = free[pick(free.count, &rng)] }
            if kind.lasts { fault.duration = uniform(nemesis.duration, &rng) }
            switch kind {
            case .killWorker, .killCoordinator, .restartStore:
                fault.restartAfter = uniform(1...5, &rng)
            case .cutWorker, .cutWorkerFromStore:
                let modes: [NetworkMode] = [.blackhole, .delay(ms: 50 + pick(450, &rng), jitterMs: pick(100, &rng)), .reset,
                                            .bandwidth(bytesPerSecond: 512 * (1 + pick(16, &rng)))]
                fault.network = modes[pick(modes.count, &rng)]
                if fault.network != .reset { fault.direction = Direction.allCases[pick(Direction.allCases.count, &rng)] }
            case .kafkaBrokerDown:
                fault.broker = 1 + pick(kafka?.brokers ?? 1, &rng)
                brokerDown = (fault.broker ?? 1, fault.healsAt + (lanes > 1 ? overlapMargin : 0))
            case .kafkaLeaderChange:
                guard let menu = kafka, !menu.topics.isEmpty else { break }  // not feasible without (above)
                fault.topic = menu.topics[pick(menu.topics.count, &rng)]
                fault.partition = pick(fault.topic == .progress ? 1 : menu.partitions, &rng)
                let up = (1...max(1, menu.brokers)).filter { $0 != brokerDown?.broker }
                fault.broker = up[pick(up.count, &rng)]
            case .kafkaRequestErrors:
                guard let menu = kafka, !menu.apis.isEmpty else { break }
                let (api, errors) = menu.apis[pick(menu.apis.count, &rng)]
                fault.api = api
                fault.errorCode = errors[pick(errors.count, &rng)]
                fault.count = 1 + pick(30, &rng)
            default:
                break
            }
            drawn.append(fault)
            members.apply(fault)
            if lanes > 1, let resource = resource(fault) { held[resource] = fault.healsAt + overlapMargin }
            next[lane] = fault.healsAt + uniform(nemesis.gap, &rng)
        }
        return drawn
    }

    /// The most faults a nemesis draws (a soak of an hour at one fault every few seconds stays far below).
    static let maxFaults = 20_000

    private static func pick(_ n: Int, _ rng: inout SplitMix64) -> Int { Int(rng.next() % UInt64(max(1, n))) }

    /// A uniform draw in `range`, rounded to 0.1 s so that schedules print and compare plainly.
    private static func uniform(_ range: ClosedRange<Double>, _ rng: inout SplitMix64) -> Double {
        let unit = Double(rng.next() >> 11) / Double(1 << 53)
        return ((range.lowerBound + unit * (range.upperBound - range.lowerBound)) * 10).rounded() / 10
    }
}
