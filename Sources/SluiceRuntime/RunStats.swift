import Metrics
import Synchronization

/// Counters shared by the partition lanes of a run and read by the progress line.
public final class RunStats: Sendable {
    public final class Counter: Sendable {
        private let value = Atomic<Int64>(0)
        public init() {}
        public func add(_ n: Int64) { value.add(n, ordering: .relaxed) }
        public var current: Int64 { value.load(ordering: .relaxed) }
    }

    public let events = Counter()
    public let rows = Counter()
    public let late = Counter()
    public let deadLetters = Counter()
    public let commits = Counter()
    public let checkpointBytes = Counter()
    public let checkpointNanos = Counter()
    public let corruptCheckpoints = Counter()
    public let partitionsDone = Counter()
    public let fencedCommits = Counter()
    /// Partitions stopped by an error other than fencing (a failed checkpoint, an unreadable source).
    public let failures = Counter()

    // Histograms for /metrics. They are no-ops unless the process bootstrapped a metrics backend
    // before creating these stats (the worker does, with --metrics).
    public let checkpointDuration = Metrics.Timer(label: "sluice_checkpoint_duration_seconds")
    public let checkpointSize = Recorder(label: "sluice_checkpoint_bytes", aggregate: true)

    public init() {}
}
