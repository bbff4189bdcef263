import SluiceStorage

/// The coordinator's durable epochs and owners in PostgreSQL (`sluice coordinator --store
/// postgres://…`), in `sluice_coordinator_leases` of Sluice's versioned schema. Used only from
/// inside the coordinator's actor, one call at a time. A lost connection is retried with backoff
/// for at most `retryLimit` (5 s, far shorter than the stores': the coordinator's actor waits
/// meanwhile, heartbeats unanswered, so a longer wait would let leases lapse);
/// a save that still fails throws, and the grant it belonged to is not sent.
public final class PostgresLeaseLedger: LeaseLedger, @unchecked Sendable {
    private let session: PostgresSession

    public init(url: PostgresURL, retryLimit: Duration = .seconds(5), log: @escaping @Sendable (String) -> Void) throws {
        session = PostgresSession(url: url, name: "coordinator ledger", retryLimit: retryLimit, log: log)
        try session.run { conn, _ in _ = try PostgresSchema.migrate(conn) }
    }

    public func load() throws -> [(partition: Int, epoch: Int64, owner: String?)] {
        try session.run { conn, _ in
            let rows = try conn.execute("SELECT partition, epoch, owner FROM sluice_coordinator_leases ORDER BY partition")
            return try (0..<rows.count).map { r in (Int(try rows.int64(r, 0)), try rows.int64(r, 1), rows.string(r, 2)) }
        }
    }

    /// The leader epoch writes are checked against; nil: none (a single coordinator's tests).
    private var fence: Int64?
    /// The open transaction of `batch`, which `save` joins.
    private var batchConnection: PostgresConnection?

    public func fence(leaderEpoch: Int64) throws { fence = leaderEpoch }

    /// One transaction for the whole body. It is not retried once the body has run: the body
    /// changes the coordinator's memory too, which the caller restores when this throws.
    public func batch(_ body: () throws -> Void) throws {
        var ran = false
        try session.run { conn, _ in
            if ran { throw StoreError("coordinator ledger: the connection was lost during a write; it is not repeated") }
            ran = true
            try conn.transaction {
                try checkFence(conn)
                batchConnection = conn
                defer { batchConnection = nil }
                try body()
            }
        }
    }

    /// Inside the write's transaction: refuses when another coordinator leads now. `FOR SHARE`
    /// holds off a takeover until this transaction ends.
    private func checkFence(_ conn: PostgresConnection) throws {
        guard let fence else { return }
        let current = try conn.execute("SELECT epoch FROM sluice_coordinator_leader WHERE id = 1 FOR SHARE").int64(0, 0)
        if current != fence { throw NotLeader(epoch: fence, currentEpoch: current) }
    }

    /// An upsert: running it twice (a retry after a lost answer) is harmless.
    public func save(partition: Int, epoch: Int64, owner: String?) throws {
        guard let conn = batchConnection else { return try batch { try save(partition: partition, epoch: epoch, owner: owner) } }
        try conn.execute("""
            INSERT INTO sluice_coordinator_leases(partition, epoch, owner) VALUES ($1, $2, $3)
            ON CONFLICT (partition) DO UPDATE SET epoch = excluded.epoch, owner = excluded.owner
            """, [.int(Int64(partition)), .int(epoch), owner.map { .text($0) } ?? .null])
    }
}
