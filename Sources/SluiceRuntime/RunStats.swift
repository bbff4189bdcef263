import Synchronization

/// Counters shared by the partition lanes of a run and read by the progress line.
public final class RunStats: Sendable {
    public final class Counter: Sendable {
        private let value = Atomic<Int64>(0)
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

    public init() {}
}
