import Dispatch

/// A serial executor on a dispatch queue of its own, for actors whose work blocks (SQLite, libpq):
/// their calls then occupy that queue's thread, never one of the cooperative pool's few threads,
/// which run the coordinator's heartbeats and the workers' partitions.
public final class QueueExecutor: SerialExecutor {
    private let queue: DispatchQueue

    public init(label: String) { queue = DispatchQueue(label: label) }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedSerialExecutor()
        queue.async { job.runSynchronously(on: executor) }
    }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor { UnownedSerialExecutor(ordinary: self) }
}
