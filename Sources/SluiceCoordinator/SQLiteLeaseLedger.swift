import SluiceStorage

/// The coordinator's durable epochs and owners in SQLite (the embedded default).
/// Used only from inside the coordinator's actor, one call at a time.
public final class SQLiteLeaseLedger: LeaseLedger, @unchecked Sendable {
    private let db: SQLiteDatabase

    /// The leader epoch every write is checked against (see `LeadershipStore`); nil: no check.
    /// Set once, before the coordinator's service starts.
    public var fence: Int64?
    public func fence(leaderEpoch: Int64) throws { fence = leaderEpoch }
    private var inBatch = false

    public init(path: String) throws {
        db = try SQLiteDatabase(path: path)
        try db.execute("PRAGMA journal_mode=WAL")
        try db.execute("PRAGMA synchronous=FULL")
        try db.execute("""
            CREATE TABLE IF NOT EXISTS coordinator_leases(
                partition INTEGER PRIMARY KEY, epoch INTEGER NOT NULL, owner TEXT)
            """)
        try SQLiteLeadership.createTable(db)
    }

    public func load() throws -> [(partition: Int, epoch: Int64, owner: String?)] {
        let stmt = try db.prepare("SELECT partition, epoch, owner FROM coordinator_leases ORDER BY partition")
        var result: [(Int, Int64, String?)] = []
        while try stmt.step() {
            result.append((Int(stmt.int64(0)), stmt.int64(1), stmt.isNull(2) ? nil : stmt.string(2)))
        }
        return result
    }

    public func batch(_ body: () throws -> Void) throws {
        try db.transaction {
            inBatch = true
            defer { inBatch = false }
            try checkFence()
            try body()
        }
    }

    /// Inside the write transaction: refuses when another coordinator leads now.
    private func checkFence() throws {
        guard let fence else { return }
        let stmt = try db.prepare("SELECT epoch FROM coordinator_leader WHERE id = 1")
        defer { stmt.reset() }
        let current = try stmt.step() ? stmt.int64(0) : 0
        if current != fence { throw NotLeader(epoch: fence, currentEpoch: current) }
    }

    public func save(partition: Int, epoch: Int64, owner: String?) throws {
        guard inBatch else { return try batch { try save(partition: partition, epoch: epoch, owner: owner) } }
        let stmt = try db.prepare("""
            INSERT INTO coordinator_leases(partition, epoch, owner) VALUES (?, ?, ?)
            ON CONFLICT(partition) DO UPDATE SET epoch = excluded.epoch, owner = excluded.owner
            """).bind(1, Int64(partition)).bind(2, epoch)
        if let owner { stmt.bind(3, owner) }
        try stmt.run()
    }
}
