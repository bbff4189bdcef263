/// Sluice's tables in PostgreSQL, created and migrated by Sluice itself. The schema's version is
/// the highest row of `sluice_schema_version`; `migrations` is the ordered list of steps, each
/// applied once, in one transaction under an advisory lock (workers and the coordinator starting
/// together neither race nor apply a step twice). Add steps at the end; never edit a shipped one.
public enum PostgresSchema {
    public struct Migration: Sendable {
        public var version: Int
        public var description: String
        public var sql: String
    }

    public static let migrations: [Migration] = [
        Migration(version: 1, description: "checkpoint store, commit log, coordinator leases", sql: """
            CREATE TABLE sluice_meta(key text PRIMARY KEY, value text NOT NULL);
            CREATE TABLE sluice_partitions(partition integer PRIMARY KEY, epoch bigint NOT NULL);
            CREATE TABLE sluice_checkpoints(
                partition integer NOT NULL, seq bigint NOT NULL, epoch bigint NOT NULL,
                "offset" bigint NOT NULL, position bigint NOT NULL, watermark bigint NOT NULL,
                finished boolean NOT NULL, state bytea NOT NULL, files text NOT NULL,
                PRIMARY KEY(partition, seq));
            CREATE TABLE sluice_commits(
                partition integer NOT NULL, seq bigint NOT NULL, epoch bigint NOT NULL,
                from_offset bigint NOT NULL, to_offset bigint NOT NULL, "rows" bigint NOT NULL,
                late bigint NOT NULL, dead_letters bigint NOT NULL, state_bytes bigint NOT NULL,
                committed_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY(partition, seq));
            CREATE TABLE sluice_coordinator_leases(partition integer PRIMARY KEY, epoch bigint NOT NULL, owner text);
            """),
        Migration(version: 2, description: "coordinator leadership lease", sql: """
            CREATE TABLE sluice_coordinator_leader(
                id integer PRIMARY KEY CHECK (id = 1), holder text NOT NULL, epoch bigint NOT NULL,
                expires_at timestamptz NOT NULL);
            INSERT INTO sluice_coordinator_leader VALUES (1, '', 0, '-infinity');
            """),
        Migration(version: 3, description: "claim log", sql: """
            -- Every accepted claim, with the partition's last commit seq at that moment: the chaos
            -- checks prove from it that no commit of an epoch older than the latest claim was accepted.
            CREATE TABLE sluice_claims(
                id bigserial PRIMARY KEY, partition integer NOT NULL, epoch bigint NOT NULL,
                after_seq bigint NOT NULL, claimed_at timestamptz NOT NULL DEFAULT now());
            """),
        // Rows written before it get their checksum from PostgresCheckpointStore.init.
        Migration(version: 4, description: "checkpoint checksum over every field", sql: """
            ALTER TABLE sluice_checkpoints ADD COLUMN checksum bigint;
            """),
        Migration(version: 5, description: "coordinator leadership held by process instance", sql: """
            -- The lease is held by a process instance, not by a name (LeaderCandidate in SluiceCoordinator).
            ALTER TABLE sluice_coordinator_leader ADD COLUMN instance text NOT NULL DEFAULT '';
            """),
    ]

    public static var latestVersion: Int { migrations.last?.version ?? 0 }

    /// "SLUICE" + 1: the advisory lock that serializes schema changes and sink table creation.
    public static let lockKey: Int64 = 0x534C_5549_4345_0001

    /// Applies the missing migrations; returns the versions before and after. Refuses a database
    /// written by a newer Sluice.
    @discardableResult
    public static func migrate(_ conn: PostgresConnection) throws -> (from: Int, to: Int) {
        try conn.transaction {
            try conn.execute("SELECT pg_advisory_xact_lock($1)", [.int(lockKey)])
            try conn.execute("""
                CREATE TABLE IF NOT EXISTS sluice_schema_version(
                    version integer PRIMARY KEY, description text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now())
                """)
            let current = try Int(conn.execute("SELECT COALESCE(MAX(version), 0) FROM sluice_schema_version").int64(0, 0))
            guard current <= latestVersion else {
                throw StoreError("\(conn.url.redacted) has Sluice schema version \(current); this sluice knows versions up to \(latestVersion): upgrade sluice")
            }
            for migration in migrations where migration.version > current {
                try conn.execute(migration.sql)
                try conn.execute("INSERT INTO sluice_schema_version(version, description) VALUES ($1, $2)",
                                 [.int(Int64(migration.version)), .text(migration.description)])
            }
            return (current, latestVersion)
        }
    }
}
