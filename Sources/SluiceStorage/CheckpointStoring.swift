import Dispatch
import Logging
import SluiceCore

/// What the runtime needs from a checkpoint store, embedded (`CheckpointStore`, SQLite) or
/// PostgreSQL (`PostgresCheckpointStore`): both give the same fenced commit.
public protocol CheckpointStoring: Actor {
    /// Where the store lives, fit for logs (a path, or a URL without its password).
    var location: String { get }
    func bind(job fingerprint: String, partitions: Int, writer: any CommitWriter) throws
    /// A random id made once per store and kept in `sluice_meta`: every process sharing the store
    /// reads the same one (a file sink records it as its directory's owner).
    func storeID() throws -> String
    func claim(partition: Int, epoch: Int64) throws -> Bool
    func claimNext(partition: Int) throws -> Int64
    func epoch(partition: Int) throws -> Int64
    func checkpoints(partition: Int) throws -> [Checkpoint]
    func commit(_ checkpoint: Checkpoint, fromOffset: Int64, output: PartitionOutput, writer: any CommitWriter) throws
    func rollBack(partition: Int, epoch: Int64, to seq: Int64, writer: any CommitWriter) throws
    func commitLog() throws -> [CheckpointStore.CommitRecord]
}

extension CheckpointStore: CheckpointStoring {
    public var location: String { path }
}

public enum CheckpointStores {
    /// `postgres://…` (or `postgresql://…`): PostgreSQL, whose lost connections are retried for
    /// `retryLimit` before an operation fails; anything else: a SQLite file path. Opening blocks
    /// (connecting, retries, migrations), so it runs on a dispatch thread, not the caller's.
    public static func open(_ location: String, retryLimit: Duration = .seconds(120),
                            logger: Logger) async throws -> any CheckpointStoring {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try openBlocking(location, retryLimit: retryLimit, logger: logger) })
            }
        }
    }

    /// `open`, on the calling thread (which may block).
    public static func openBlocking(_ location: String, retryLimit: Duration = .seconds(120),
                                    logger: Logger) throws -> any CheckpointStoring {
        if PostgresURL.isPostgres(location) {
            return try PostgresCheckpointStore(url: PostgresURL(location), retryLimit: retryLimit, logger: logger)
        }
        return try CheckpointStore(path: location)
    }
}
