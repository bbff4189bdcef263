import SluiceCore

/// Many schedules, one after the other: seeds `from`, `from + 1`, … (each schedule is independent
/// and a pure function of its seed, so any one can be run again alone with its trace).
public struct SimSummary: Sendable {
    public var schedules = 0
    public var steps = 0
    public var faults = 0
    public var commits = 0
    public var simulatedMs: Int64 = 0
    /// Schedules that ran the Kafka sink, and their Kafka transactions committed and aborted.
    public var kafkaSchedules = 0
    public var kafkaCommits = 0
    public var kafkaAborts = 0
    /// Schedules that ran the CDC source's model, and their restarts that fell back past a corrupt checkpoint.
    public var cdcSchedules = 0
    public var cdcFallbacks = 0
    public var faultsByKind: [String: Int] = [:]
    public var failures: [SimResult] = []
    public init() {}

    public mutating func add(_ result: SimResult) {
        schedules += 1
        steps += result.steps
        faults += result.faults
        commits += result.commits
        simulatedMs += result.simulatedMs
        if result.kafkaSink { kafkaSchedules += 1 }
        kafkaCommits += result.kafkaCommits
        kafkaAborts += result.kafkaAborts
        if result.cdcSource { cdcSchedules += 1 }
        cdcFallbacks += result.cdcFallbacks
        for (kind, n) in result.faultsByKind { faultsByKind[kind, default: 0] += n }
        if !result.passed { failures.append(result) }
    }
}

extension Simulator {
    /// Runs `count` seeds from `from`; stops after `maxFailures` failed schedules.
    public static func runSeeds(from: UInt64, count: Int, config: SimConfig = SimConfig(), maxFailures: Int = 1,
                                progress: ((SimSummary) -> Void)? = nil) -> SimSummary {
        var summary = SimSummary()
        var config = config
        config.trace = false
        for i in 0..<max(0, count) {
            summary.add(run(seed: from &+ UInt64(i), config: config))
            if summary.failures.count >= maxFailures { break }
            if let progress, (i + 1) % 1_000 == 0 { progress(summary) }
        }
        return summary
    }

    /// The first seed from `from` on (at most `limit` schedules) whose schedule breaks an invariant.
    public static func firstFailure(from: UInt64 = 1, limit: Int, config: SimConfig) -> (result: SimResult, schedules: Int)? {
        var config = config
        config.trace = false
        for i in 0..<limit {
            let result = run(seed: from &+ UInt64(i), config: config)
            if !result.passed { return (result, i + 1) }
        }
        return nil
    }
}
