import Foundation
import SluiceOps
import SluiceConnectors
import SluiceCore
import SluiceJob
import SluiceRuntime
import SluiceStorage

/// `view.cdc.rows_per_s`: CDC changes applied to a PostgreSQL view (jobs/customers-view.yaml's
/// shape: string key, decimal, bool, a derived field, a filter), one partition, checkpoint every
/// 200 ms. A writer makes 1,000,000 changes: 200,000 inserts (COPY, transactions of 10,000 rows),
/// then updates of every row four times over (`UPDATE … WHERE n BETWEEN …`, 10,000 rows per
/// statement). The figure: changes decoded and committed into the view per second, from the
/// writer's first row to the commit covering the last change.
extension PostgresBench {
    static let viewJobYAML = """
        name: bench-view
        kind: view
        schema:
          - {name: id, type: string}
          - {name: tier, type: string, nullable: true}
          - {name: credit, type: decimal, scale: 2, min: 0}
          - {name: active, type: bool}
        key: id
        derive:
          - {name: gold, expr: "tier = 'gold'"}
        filter: "active"
        table: customers_view
        checkpoint: {interval_ms: 200}
        """

    func viewCdc() async throws {
        let (db, drop) = try freshDatabase("view")
        let slotPrefix = "sluice_bench_view_\(getpid())"
        let admin = try PostgresConnection(url: PostgresURL(db))
        defer {
            _ = try? admin.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE '\(slotPrefix)%'")
            drop()
        }
        try admin.execute("CREATE TABLE bench_customers(id text PRIMARY KEY, tier text, credit numeric(12,2) NOT NULL, active boolean NOT NULL, n bigint NOT NULL)")
        let job = try JobSpec.parse(yaml: PostgresBench.viewJobYAML)
        let source = "postgres-cdc://" + db.dropFirst("postgres://".count) + (db.contains("?") ? "&" : "?")
            + "table=bench_customers&partitions=1&key=id&slot=\(slotPrefix)"
        let sources = try SourceFactory(uri: source, job: job)
        let sink = try PostgresSink(url: PostgresURL(db), job: job)
        let store = try PostgresCheckpointStore(url: PostgresURL(db), logger: .lines("store", { note($0) }))
        try await store.bind(job: job.fingerprint, partitions: 1, writer: sink)
        let epoch = try await store.claimNext(partition: 0)
        let runner = PartitionRunner(partition: 0, epoch: epoch, job: job, store: store, sink: sink, stats: RunStats(), sources: sources)
        try await runner.start(logger: SluiceLogging.logger("bench"))  // creates the slot: the writer starts after
        let rows = 200_000, rounds = 4
        let changes = rows * (1 + rounds)
        let started = ContinuousClock.now
        let writer = Task.detached { try PostgresBench.writeCustomers(url: db, rows: rows, rounds: rounds) }
        let deadline = started + .seconds(300)
        while runner.committedOffset < Int64(changes) {
            guard ContinuousClock.now < deadline else {
                throw BenchError("view bench: only \(runner.committedOffset) of \(changes) changes committed in 300 s")
            }
            _ = try await runner.step()
        }
        let seconds = (ContinuousClock.now - started).seconds
        let writeSeconds = try await writer.value
        let viewRows = try admin.execute("SELECT COUNT(*) FROM customers_view").int64(0, 0)
        let tableRows = try admin.execute("SELECT COUNT(*) FROM bench_customers WHERE active").int64(0, 0)
        guard viewRows == tableRows else { throw BenchError("view bench: the view holds \(viewRows) rows, the table \(tableRows) active ones") }
        print("view.cdc.rows_per_s: \(Int(Double(changes) / seconds)) changes/s")
        note("bench: \(grouped(Int64(changes))) changes (\(grouped(Int64(rows))) inserts, \(rounds) updates of each row) applied to a view of \(grouped(viewRows)) rows; the writer took \(String(format: "%.2f", writeSeconds)) s, capture and commit \(String(format: "%.2f", seconds)) s")
    }

    private static func writeCustomers(url: String, rows: Int, rounds: Int) throws -> Double {
        let conn = try PostgresConnection(url: PostgresURL(url))
        let start = ContinuousClock.now
        let tiers = ["gold", "silver", "bronze"]
        for first in stride(from: 0, to: rows, by: 10_000) {
            try conn.copyIn(into: "bench_customers", columns: ["id", "tier", "credit", "active", "n"]) { out in
                for i in first..<min(rows, first + 10_000) {
                    out.text("cust-\(i)")
                    out.text(tiers[i % 3])
                    out.numeric("\(i % 5_000).\(i % 100)")
                    out.bool(i % 10 != 0)
                    out.int(Int64(i))
                    try out.endRow()
                }
            }
        }
        for round in 1...rounds {
            for first in stride(from: 0, to: rows, by: 10_000) {
                try conn.execute("""
                    UPDATE bench_customers SET credit = credit + 1, active = (n + \(round)) % 10 <> 0,
                        tier = CASE WHEN tier = 'gold' THEN 'silver' ELSE 'gold' END
                    WHERE n >= \(first) AND n < \(first + 10_000)
                    """)
            }
        }
        return (ContinuousClock.now - start).seconds
    }
}
