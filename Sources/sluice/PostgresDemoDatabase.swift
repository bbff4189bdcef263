import SluiceStorage

/// `sluice demo --store postgres://…`: the demo's tables in the user's database, cleared first so
/// that every demo starts from nothing (only Sluice's own tables and `demo_results*`).
enum PostgresDemoDatabase {
    static let table = "demo_results"

    static func sinkURL(_ store: String) -> String {
        store + (store.contains("?") ? "&" : "?") + "table=\(table)"
    }

    static func reset(_ store: String) throws {
        let conn = try PostgresConnection(url: PostgresURL(store))
        try conn.execute("""
            DROP TABLE IF EXISTS \(table), \(table)_late, \(table)_dead_letters, sluice_meta, sluice_partitions,
                sluice_checkpoints, sluice_commits, sluice_coordinator_leases, sluice_schema_version
            """)
    }
}
