import Logging
import SluiceConnectors
import SluiceJob
import SluiceStorage

/// A sink and the checkpoint store that commits it, opened the one way `sluice run` and the worker
/// share: the sink's output must belong to this run (`admit`, before the store opens, so a refused
/// directory stays untouched, and again with the store's id), and the store must be bound to this
/// job, input, sink and table (`StoreBinding`).
public enum RunOutput {
    /// The output or the store belongs to another run: no retry cures it.
    public struct Refused: Error, CustomStringConvertible {
        public var cause: any Error
        public var description: String { "\(cause)" }
    }

    public static func open(job: JobSpec, input: String, output: String, statePath: String?, partitions: Int,
                            storeRetryLimit: Duration = .seconds(120),
                            logger: Logger) async throws -> (sink: any Sink, store: any CheckpointStoring) {
        // Opening connects (libpq, SQLite): off the cooperative pool.
        try await withTaskExecutorPreference(BlockingWork.executor) {
            try await openHere(job: job, input: input, output: output, statePath: statePath, partitions: partitions,
                               storeRetryLimit: storeRetryLimit, logger: logger)
        }
    }

    private static func openHere(job: JobSpec, input: String, output: String, statePath: String?, partitions: Int,
                                 storeRetryLimit: Duration, logger: Logger) async throws -> (sink: any Sink, store: any CheckpointStoring) {
        func refused<T>(_ body: () throws -> T) throws -> T {
            do { return try body() } catch { throw Refused(cause: error) }
        }
        let sink = try refused { try SinkFactory.open(uri: output, job: job, logger: logger) }
        let statePath = statePath ?? sink.defaultStatePath
        let fingerprint = StoreBinding.fingerprint(job: job, input: input, output: output)
        var owner = SinkOwner(job: job.name, fingerprint: fingerprint)
        try refused { try sink.admit(owner, statePath: statePath) }
        // Opening may fail for a while (a PostgreSQL server away): not a refusal.
        let store = try await CheckpointStores.open(statePath, retryLimit: storeRetryLimit, logger: logger)
        do {
            try await store.bind(job: fingerprint, partitions: partitions, writer: sink)
        } catch let error as StoreError {
            throw Refused(cause: error)
        }
        owner.store = try await store.storeID()
        try refused { try sink.admit(owner, statePath: statePath) }
        return (sink, store)
    }
}
