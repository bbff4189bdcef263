// A records job over the transactional outbox: string customer keys placed by murmur2 (the writer
// fills the partition column with the documented function), numeric amounts, timestamptz times,
// booleans, NULLs, and strings with commas, quotes and line ends. The rows arrive as PostgreSQL's
// text output (row images), the engine decodes them in its PostgreSQL text mode, and the typed
// PostgreSQL sink must hold exactly what the writer inserted.

import Foundation
import SluiceCore
import SluiceStorage
import SluiceWorkload
import Testing

extension SluiceEndToEndTests.PostgresTests {
    @Test("Outbox on PostgreSQL, a records job: typed row images decoded exactly, per customer", .timeLimit(.minutes(4)))
    func outboxRecordsJob() async throws {
        let database = try TestPostgres.freshDatabase("outbox_records")
        let conn = try TestPostgres.connect(database)
        try conn.execute("""
            CREATE TABLE orders_outbox(
                id bigserial PRIMARY KEY, part bigint NOT NULL, customer text NOT NULL, amount numeric(12,2),
                ts timestamptz NOT NULL, paid boolean NOT NULL, note text,
                txid xid8 NOT NULL DEFAULT pg_current_xact_id())
            """)
        // Every session of this database prints timestamptz at +05:30: the source must read the offset.
        try conn.execute("DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET timezone = %L', current_database(), 'Asia/Kolkata'); END $$")
        let partitions = 2
        let source = "postgres-outbox://" + database.dropFirst("postgres://".count)
            + (database.contains("?") ? "&" : "?") + "table=orders_outbox&partitions=\(partitions)&key=part"
        let scratch = try ScratchDir("outbox-records")
        defer { scratch.remove() }
        let job = scratch.at("job.yaml")
        try """
            name: outbox-orders
            schema:
              - {name: customer, type: string}
              - {name: amount, type: decimal, scale: 2, nullable: true}
              - {name: ts, type: timestamp}
              - {name: paid, type: bool}
              - {name: note, type: string, nullable: true}
            key: customer
            time: ts
            window: {kind: tumbling, size_ms: 1000000000}
            aggregates: [count, {sum: amount}, {last: paid}, {max: note}]
            table: orders_by_customer
            checkpoint: {interval_ms: 300}
            """.write(toFile: job, atomically: true, encoding: .utf8)
        let cluster = try await Cluster(label: "pg-outbox-records", input: scratch.path, database: database, inputURI: source, job: job)
        defer { cluster.tearDown() }
        try await cluster.startCoordinator()
        try cluster.startWorker("worker-1", rate: nil)
        _ = try await cluster.waitForStatus("worker-1 holds both partitions", timeout: .seconds(60)) { $0.settled && $0.heldCounts.count == 1 }

        // The writer's own log: per customer, count, exact sum (cents, nil when every amount is
        // NULL), the last paid flag by time, the greatest note by UTF-8 bytes.
        let placement = KeyPartitioner(.murmur2, partitions: partitions)
        let customers = ["c-1", "c,2", "c\"3", "ü-4", "c 5", "c-6\nx"]
        let notes: [String?] = [nil, "", "a,b", "q\"uote", "line\nbreak", "zz"]
        var expected: [String: (count: Int, cents: Int64?, lastPaid: Bool, lastTime: Int64, maxNote: String?)] = [:]
        var rng = SplitMix64(seed: 77)
        var values: [String] = []
        func literal(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "''") + "'" }
        for i in 0..<240 {
            let customer = customers[Int(rng.next() % UInt64(customers.count))]
            let cents: Int64? = rng.next() % 5 == 0 ? nil : Int64(rng.next() % 100_000) - 20_000
            let time = Int64(86_400_000) + Int64(i) * 1_000 + Int64(rng.next() % 999)  // 1970-01-02 onwards, distinct, in order
            let paid = rng.next() % 2 == 0
            let note = notes[Int(rng.next() % UInt64(notes.count))]
            let part = placement.murmur2Partition(Array(customer.utf8))
            let amount = cents.map { DecimalText.format($0, scale: 2) } ?? "NULL"
            values.append("(\(part), \(literal(customer)), \(amount), 'epoch'::timestamptz + interval '1 millisecond' * \(time), "
                          + "\(paid), \(note.map(literal) ?? "NULL"))")
            var e = expected[customer] ?? (0, nil, false, Int64.min, nil)
            e.count += 1
            if let cents { e.cents = (e.cents ?? 0) + cents }
            if time > e.lastTime { e.lastTime = time; e.lastPaid = paid }
            if let note, e.maxNote.map({ Value.utf8Less($0, note) }) ?? true { e.maxNote = note }
            expected[customer] = e
        }
        try conn.execute("INSERT INTO orders_outbox(part, customer, amount, ts, paid, note) VALUES " + values.joined(separator: ", "))
        // One far-future row per partition closes the window.
        for p in 0..<partitions {
            let key = (0..<1_000).map { "flush-\($0)" }.first { placement.murmur2Partition(Array($0.utf8)) == p } ?? "flush"
            try conn.execute("INSERT INTO orders_outbox(part, customer, amount, ts, paid) VALUES (\(p), \(literal(key)), 1.00, '2030-01-01T00:00:00Z', true)")
        }

        var sink: [String: [String?]] = [:]
        let complete = await eventually(timeout: .seconds(90), every: .milliseconds(500)) {
            guard let r = try? conn.execute("""
                SELECT customer, "count"::text, sum_amount::text, last_paid::text, max_note FROM orders_by_customer WHERE window_start_ms = 0
                """) else { return false }
            sink = [:]
            for i in 0..<r.count { if let c = r.string(i, 0) { sink[c] = (1..<5).map { r.string(i, $0) } } }
            return sink.count == expected.count
        }
        #expect(complete, "the window did not fire with every customer:\n\(cluster.diagnostics())")
        let dead = try conn.execute("SELECT reason FROM orders_by_customer_dead_letters")
        #expect(dead.count == 0, "dead letters: \((0..<dead.count).compactMap { dead.string($0, 0) }.prefix(5))")
        for (customer, e) in expected {
            let want: [String?] = [String(e.count), e.cents.map { DecimalText.format($0, scale: 2) }, e.lastPaid ? "true" : "false", e.maxNote]
            #expect(sink[customer] == want, "customer \(customer.debugDescription): sink \(sink[customer] ?? []), wrote \(want)")
        }
        print("[postgres outbox, records] \(expected.count) customers, \(expected.values.reduce(0) { $0 + $1.count }) rows; sink \(sink.count) customers")
        _ = await cluster.stopGracefully()
    }
}
