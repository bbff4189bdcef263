import SluiceStorage

/// The schema of the coordinator's SQLite state file (`--state`): the lease ledger and the
/// leadership lease, migrated in order; the version lives in `PRAGMA user_version`. Files made
/// before versions (user_version 0) may already have the tables: the steps are written so that
/// they apply to those too.
enum SQLiteCoordinatorSchema {
    static let schema = SQLiteSchema(
        name: "coordinator state",
        migrations: [
            SQLiteMigration(version: 1, description: "lease ledger and leadership lease") { db in
                try db.execute("""
                    CREATE TABLE IF NOT EXISTS coordinator_leases(
                        partition INTEGER PRIMARY KEY, epoch INTEGER NOT NULL, owner TEXT);
                    CREATE TABLE IF NOT EXISTS coordinator_leader(
                        id INTEGER PRIMARY KEY CHECK (id = 1), holder TEXT NOT NULL, epoch INTEGER NOT NULL,
                        expires_ms INTEGER NOT NULL)
                    """)
            },
            SQLiteMigration(version: 2, description: "the leadership lease is held by process instance") { db in
                // A file from before versions may have the column already.
                let stmt = try db.prepare("SELECT COUNT(*) FROM pragma_table_info('coordinator_leader') WHERE name = 'instance'")
                let has = try stmt.step() && stmt.int64(0) == 1
                stmt.reset()
                if !has { try db.execute("ALTER TABLE coordinator_leader ADD COLUMN instance TEXT NOT NULL DEFAULT ''") }
            },
        ],
        readVersion: SQLiteSchema.userVersion, writeVersion: SQLiteSchema.setUserVersion)

    /// WAL and full sync, then the migrations (a journal mode cannot change inside a transaction).
    static func migrate(_ db: SQLiteDatabase) throws {
        try db.execute("PRAGMA journal_mode=WAL")
        try db.execute("PRAGMA synchronous=FULL")
        try schema.migrate(db)
    }
}
