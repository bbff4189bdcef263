import Dispatch
import Synchronization

/// A worker's processing lanes: each a serial task executor, so a worker uses at most `count`
/// cores however many partitions it holds (like a task slot in Flink, or a stream thread in Kafka
/// Streams). Partitions on one lane take turns block by block; the scale-out unit is the worker.
public final class Lanes: Sendable {
    private let lanes: [Lane]
    private let load: Mutex<[Int]>

    public init(count: Int) {
        lanes = (0..<max(1, count)).map { Lane(label: "sluice.lane.\($0)") }
        load = Mutex([Int](repeating: 0, count: max(1, count)))
    }

    public var count: Int { lanes.count }

    /// The least loaded lane; give it back with `release` when the partition stops.
    func acquire() -> (index: Int, executor: any TaskExecutor) {
        let index = load.withLock { load in
            let i = load.indices.min { load[$0] < load[$1] } ?? 0
            load[i] += 1
            return i
        }
        return (index, lanes[index])
    }

    func release(_ index: Int) {
        load.withLock { $0[index] -= 1 }
    }
}

/// Blocking work that must not hold the cooperative pool (opening a PostgreSQL store or sink
/// connects through libpq): `withTaskExecutorPreference(BlockingWork.executor) { … }`.
public enum BlockingWork {
    public static let executor: any TaskExecutor = Lane(label: "sluice.blocking")
}

/// One serial lane: jobs run in order on a dedicated dispatch queue.
private final class Lane: TaskExecutor {
    private let queue: DispatchQueue

    init(label: String) { queue = DispatchQueue(label: label) }

    func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        queue.async { unowned.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
