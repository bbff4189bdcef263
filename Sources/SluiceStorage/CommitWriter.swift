import SluiceCore

/// Writes a sink's output inside the checkpoint's transaction (SQLite and PostgreSQL sinks), or
/// nothing (file sink, whose files are listed in the checkpoint instead). A writer implements the
/// half for the store it can share a transaction with; the other half refuses.
public protocol CommitWriter: Sendable {
    func createTables(in db: SQLiteDatabase) throws
    func write(_ output: PartitionOutput, partition: Int, seq: Int64, in db: SQLiteDatabase) throws
    /// Removes the output of this partition's commits after `seq` (falling back past a corrupt checkpoint).
    func discard(partition: Int, after seq: Int64, in db: SQLiteDatabase) throws

    // The same inside a PostgreSQL checkpoint store's transaction.
    func createTables(in pg: PostgresConnection) throws
    func write(_ output: PartitionOutput, partition: Int, seq: Int64, in pg: PostgresConnection) throws
    func discard(partition: Int, after seq: Int64, in pg: PostgresConnection) throws
}

/// By default a writer cannot join a PostgreSQL transaction: its output lives elsewhere.
extension CommitWriter {
    public func createTables(in pg: PostgresConnection) throws {
        throw StoreError("\(Self.self) writes into a SQLite database and cannot commit with a PostgreSQL checkpoint store (\(pg.url.redacted)); use a file: or postgres:// sink, or a SQLite --state")
    }
    public func write(_ output: PartitionOutput, partition: Int, seq: Int64, in pg: PostgresConnection) throws {
        try createTables(in: pg)
    }
    public func discard(partition: Int, after seq: Int64, in pg: PostgresConnection) throws {
        try createTables(in: pg)
    }
}
