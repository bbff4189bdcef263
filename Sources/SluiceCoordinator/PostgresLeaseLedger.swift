import Logging
import SluiceStorage

/// The coordinator's durable epochs and owners in PostgreSQL (`sluice coordinator --store
/// postgres://…`), in `sluice_coordinator_leases` of Sluice's versioned schema. libpq blocks (and
/// `PostgresSession` sleeps between retries), so the ledger is an actor on a queue of its own: the
/// coordinator's service awaits it while its heartbeats go on. A lost connection is retried with
/// backoff for at most `retryLimit` (5 s); a write that still fails throws, and the change it
/// belonged to is forgotten (its grants are not sent).
public actor PostgresLeaseLedger: DurableLeaseLedger {
    private let session: PostgresSession
    private let executor = QueueExecutor(label: "sluice.coordinator-ledger")
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    public init(url: PostgresURL, retryLimit: Duration = .seconds(5), logger: Logger) async throws {
        session = PostgresSession(url: url, name: "coordinator ledger", retryLimit: retryLimit, logger: logger)
        // From here on the initializer runs on the ledger's executor.
        try session.run { conn, _ in _ = try PostgresSchema.migrate(conn) }
    }

    public func load() throws -> [LeaseRecord] {
        try session.run { conn, _ in
            let rows = try conn.execute("SELECT partition, epoch, owner FROM sluice_coordinator_leases ORDER BY partition")
            return try (0..<rows.count).map { r in
                LeaseRecord(partition: Int(try rows.int64(r, 0)), epoch: try rows.int64(r, 1), owner: rows.string(r, 2))
            }
        }
    }

    /// One transaction for all the records. Upserts of fixed values, so a retry after a lost
    /// answer is harmless.
    public func write(_ records: [LeaseRecord], leaderEpoch fence: Int64?) throws {
        try session.run { conn, _ in
            try conn.transaction {
                try Self.checkFence(conn, fence)
                for record in records {
                    try conn.execute("""
                        INSERT INTO sluice_coordinator_leases(partition, epoch, owner) VALUES ($1, $2, $3)
                        ON CONFLICT (partition) DO UPDATE SET epoch = excluded.epoch, owner = excluded.owner
                        """, [.int(Int64(record.partition)), .int(record.epoch), record.owner.map { .text($0) } ?? .null])
                }
            }
        }
    }

    /// Inside the write's transaction: refuses when another coordinator leads now. `FOR SHARE`
    /// holds off a takeover until this transaction ends.
    private static func checkFence(_ conn: PostgresConnection, _ fence: Int64?) throws {
        guard let fence else { return }
        let current = try conn.execute("SELECT epoch FROM sluice_coordinator_leader WHERE id = 1 FOR SHARE").int64(0, 0)
        if current != fence { throw NotLeader(epoch: fence, currentEpoch: current) }
    }
}
