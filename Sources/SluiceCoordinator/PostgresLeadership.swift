import Logging
import SluiceStorage

/// The leadership lease in PostgreSQL (`sluice_coordinator_leader`), for coordinators on different
/// machines: expiry is judged by the server's clock alone, so the coordinators' clocks never
/// matter. Its own connection, on a queue of its own (libpq blocks; the actor serializes the
/// leadership loop and a resignation at shutdown); each call is retried only briefly, since the
/// loop itself decides what a failure means.
public actor PostgresLeadership: LeadershipStore {
    private let session: PostgresSession
    private let executor = QueueExecutor(label: "sluice.coordinator-leadership")
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    public init(url: PostgresURL, logger: Logger) async throws {
        session = PostgresSession(url: url, name: "coordinator leadership", retryLimit: .seconds(1), logger: logger)
        // From here on the initializer runs on the store's executor.
        try session.run { conn, _ in _ = try PostgresSchema.migrate(conn) }
    }

    public func tryAcquire(candidate: LeaderCandidate, ttlMs: Int64) throws -> Int64? {
        try session.run { conn, _ in
            try conn.transaction { () throws -> Int64? in
                let row = try conn.execute("""
                    SELECT holder, instance, epoch, expires_at < clock_timestamp() FROM sluice_coordinator_leader
                    WHERE id = 1 FOR UPDATE
                    """)
                let holder = row.string(0, 0) ?? "", instance = row.string(0, 1) ?? ""
                let epoch = try row.int64(0, 2), expired = row.bool(0, 3)
                guard expired || holder.isEmpty || candidate.mayTakeOver(holder: holder, instance: instance) else { return nil }
                try conn.execute("""
                    UPDATE sluice_coordinator_leader
                    SET holder = $1, instance = $2, epoch = $3, expires_at = clock_timestamp() + $4 * interval '1 millisecond'
                    WHERE id = 1
                    """, [.text(candidate.name), .text(candidate.instance), .int(epoch + 1), .int(ttlMs)])
                return epoch + 1
            }
        }
    }

    public func renew(candidate: LeaderCandidate, epoch: Int64, ttlMs: Int64) throws -> Bool {
        try session.run { conn, _ in
            try conn.execute("""
                UPDATE sluice_coordinator_leader SET expires_at = clock_timestamp() + $3 * interval '1 millisecond'
                WHERE id = 1 AND instance = $1 AND epoch = $2 RETURNING epoch
                """, [.text(candidate.instance), .int(epoch), .int(ttlMs)]).count == 1
        }
    }

    public func resign(candidate: LeaderCandidate, epoch: Int64) throws {
        try session.run { conn, _ in
            _ = try conn.execute("""
                UPDATE sluice_coordinator_leader SET expires_at = '-infinity' WHERE id = 1 AND instance = $1 AND epoch = $2
                """, [.text(candidate.instance), .int(epoch)])
        }
    }

    public func holder() throws -> (candidate: String, epoch: Int64)? {
        try session.run { conn, _ in
            let row = try conn.execute("SELECT holder, epoch FROM sluice_coordinator_leader WHERE id = 1")
            guard row.count == 1, let holder = row.string(0, 0), !holder.isEmpty else { return nil }
            return (holder, try row.int64(0, 1))
        }
    }
}

