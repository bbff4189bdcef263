import SluiceStorage

/// The coordinator's durable epochs and owners in SQLite (the embedded default). SQLite calls
/// block (fsync, another process's write lock), so the ledger is an actor on a queue of its own.
public actor SQLiteLeaseLedger: DurableLeaseLedger {
    private let db: SQLiteDatabase
    private let executor = QueueExecutor(label: "sluice.coordinator-ledger")
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    public init(path: String) async throws {
        db = try SQLiteDatabase(path: path)
        // From here on the initializer runs on the ledger's executor.
        try SQLiteCoordinatorSchema.migrate(db)
    }

    public func load() throws -> [LeaseRecord] {
        let stmt = try db.prepare("SELECT partition, epoch, owner FROM coordinator_leases ORDER BY partition")
        var result: [LeaseRecord] = []
        while try stmt.step() {
            result.append(LeaseRecord(partition: Int(stmt.int64(0)), epoch: stmt.int64(1), owner: stmt.isNull(2) ? nil : stmt.string(2)))
        }
        return result
    }

    public func write(_ records: [LeaseRecord], leaderEpoch: Int64?) throws {
        try db.transaction {
            try checkFence(leaderEpoch)
            for record in records {
                let stmt = try db.prepare("""
                    INSERT INTO coordinator_leases(partition, epoch, owner) VALUES (?, ?, ?)
                    ON CONFLICT(partition) DO UPDATE SET epoch = excluded.epoch, owner = excluded.owner
                    """).bind(1, Int64(record.partition)).bind(2, record.epoch)
                if let owner = record.owner { stmt.bind(3, owner) }
                try stmt.run()
            }
        }
    }

    /// Inside the write transaction: refuses when another coordinator leads now.
    private func checkFence(_ leaderEpoch: Int64?) throws {
        guard let leaderEpoch else { return }
        let stmt = try db.prepare("SELECT epoch FROM coordinator_leader WHERE id = 1")
        defer { stmt.reset() }
        let current = try stmt.step() ? stmt.int64(0) : 0
        if current != leaderEpoch { throw NotLeader(epoch: leaderEpoch, currentEpoch: current) }
    }
}
