import Logging
import SluiceStorage

/// Creates what a CDC partition reads, idempotently (several partitions and workers may run this at
/// once): the publication of the table, replica identity FULL on it (so `before` holds the whole
/// old row), and the partition's logical replication slot with the pgoutput plugin.
enum CdcSetup {
    static func ensure(_ spec: CdcSpec, slot: String, on conn: PostgresConnection, logger: Logger) throws {
        let table = "\"\(spec.table)\""
        let identity = try conn.execute("SELECT relreplident::text FROM pg_class WHERE oid = to_regclass($1)", [.text(table)])
        guard identity.count == 1 else {
            throw SourceError("source \(spec.url.redacted): table \(spec.table) does not exist; create it before starting the job")
        }
        if identity.string(0, 0) != "f" {
            try conn.execute("ALTER TABLE \(table) REPLICA IDENTITY FULL")
            logger.notice("cdc: set REPLICA IDENTITY FULL on \(spec.table), so that updates and deletes carry the whole old row")
        }
        let publication = try conn.execute("SELECT 1 FROM pg_publication WHERE pubname = $1", [.text(spec.publication)])
        if publication.count == 0 {
            do {
                try conn.execute("CREATE PUBLICATION \"\(spec.publication)\" FOR TABLE \(table)")
                logger.notice("cdc: created publication \(spec.publication) for table \(spec.table)")
            } catch let error as PostgresError where error.sqlState == "42710" {}  // created by another partition meanwhile
        }
        let covered = try conn.execute("SELECT 1 FROM pg_publication_tables WHERE pubname = $1 AND tablename = $2",
                                       [.text(spec.publication), .text(spec.table)])
        guard covered.count == 1 else {
            throw SourceError("source \(spec.url.redacted): publication \(spec.publication) exists but does not publish table \(spec.table): ALTER PUBLICATION \(spec.publication) ADD TABLE \(spec.table), or name another with publication=")
        }
        let existing = try conn.execute("SELECT plugin, database = current_database() FROM pg_replication_slots WHERE slot_name = $1", [.text(slot)])
        if existing.count == 1 {
            guard existing.string(0, 0) == "pgoutput", existing.bool(0, 1) else {
                throw SourceError("source \(spec.url.redacted): replication slot \(slot) exists for another database or plugin; choose another prefix with slot=")
            }
            return
        }
        do {
            try conn.execute("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [.text(slot)])
            logger.notice("cdc: created replication slot \(slot)")
        } catch let error as PostgresError where error.sqlState == "42710" {}  // created meanwhile
    }
}
