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

    /// An upsert: running it twice (a retry after a lost answer) is harmless.
    public func save(partition: Int, epoch: Int64, owner: String?) throws {
        try session.run { conn, _ in
            try conn.execute("""
                INSERT INTO sluice_coordinator_leases(partition, epoch, owner) VALUES ($1, $2, $3)
                ON CONFLICT (partition) DO UPDATE SET epoch = excluded.epoch, owner = excluded.owner
                """, [.int(Int64(partition)), .int(epoch), owner.map { .text($0) } ?? .null])
        }
    }
}
