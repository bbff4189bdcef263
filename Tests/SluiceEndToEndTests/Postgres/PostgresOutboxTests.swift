// The transactional outbox: four writers insert events in transactions of their own while the
// cluster reads the table, and a worker is SIGKILLed meanwhile. Every row must be counted exactly
// once: the sink's per-key count, sum and max equal what the writers themselves inserted.

import Foundation
import SluiceStorage
import SluiceWorkload
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension SluiceEndToEndTests.PostgresTests {
    /// What one writer inserted, per auction: (count, sum of price, max of price).
    struct Written: Sendable {
        var perKey: [Int64: (count: Int64, sum: Int64, max: Int64)] = [:]
        var rows = 0
        var transactions = 0
    }

    /// Inserts `transactions` transactions of 1–40 rows with short random pauses (so that commits
    /// of the four writers interleave and finish out of id order); returns its own log.
    static func outboxWriter(url: String, seed: UInt64, transactions: Int) throws -> Written {
        var rng = SplitMix64(seed: seed)
        let conn = try TestPostgres.connect(url)
        var written = Written()
        for _ in 0..<transactions {
            let n = Int(rng.next() % 40) + 1
            var values: [String] = []
            for _ in 0..<n {
                let auction = Int64(rng.next() % 300), bidder = Int64(rng.next() % 1_000)
                let price = Int64(rng.next() % 10_000) + 1, time = Int64(rng.next() % 1_000_000)
                values.append("(\(auction), \(auction), \(bidder), \(price), \(time))")
                var k = written.perKey[auction] ?? (0, 0, Int64.min)
                k.count += 1
                k.sum += price
                k.max = max(k.max, price)
                written.perKey[auction] = k
            }
            try conn.transaction {
                try conn.execute("INSERT INTO bids_outbox(key, auction, bidder, price, event_time_ms) VALUES " + values.joined(separator: ", "))
                usleep(UInt32(rng.next() % 15_000))  // hold the transaction open a little: ids commit out of order
            }
            written.rows += n
            written.transactions += 1
            usleep(UInt32(rng.next() % 10_000))
        }
        return written
    }

    @Test("Outbox on PostgreSQL: 4 concurrent writers while the job runs, a worker SIGKILLed: every row counted exactly once",
          .timeLimit(.minutes(6)))
    func outboxExactlyOnce() async throws {
        let database = try TestPostgres.freshDatabase("outbox")
        let conn = try TestPostgres.connect(database)
        try conn.execute("""
            CREATE TABLE bids_outbox(
                id bigserial PRIMARY KEY, key bigint NOT NULL, auction bigint NOT NULL, bidder bigint NOT NULL,
                price bigint NOT NULL, event_time_ms bigint NOT NULL,
                txid xid8 NOT NULL DEFAULT pg_current_xact_id())
            """)
        let partitions = 4
        let source = "postgres-outbox://" + database.dropFirst("postgres://".count)
            + (database.contains("?") ? "&" : "?") + "table=bids_outbox&partitions=\(partitions)&key=auction"
        // One window holds every writer's events; the flush rows below close it.
        let scratch = try ScratchDir("outbox-job")
        defer { scratch.remove() }
        let job = scratch.at("job.yaml")
        try """
            name: outbox-counts
            window: {kind: tumbling, size_ms: 1000000000}
            aggregates: [count, {sum: price}, {max: price}]
            checkpoint: {interval_ms: 500}
            """.write(toFile: job, atomically: true, encoding: .utf8)
        let cluster = try await Cluster(label: "pg-outbox", input: scratch.path, database: database, inputURI: source, job: job)
        defer { cluster.tearDown() }
        try await cluster.startCoordinator()
        for i in 1...3 { try cluster.startWorker("worker-\(i)", rate: nil) }
        let settled = try await cluster.waitForStatus("3 workers hold the 4 outbox partitions", timeout: .seconds(60)) {
            $0.settled && $0.heldCounts.count == 3
        }

        let writers = (0..<4).map { w in
            Task.detached { try Self.outboxWriter(url: database, seed: 1_000 + UInt64(w), transactions: 150) }
        }
        try await Task.sleep(for: .seconds(2))
        let victim = try #require(settled.heldCounts.filter { $0.value == 2 }.keys.sorted().first ?? settled.heldCounts.keys.sorted().first)
        let child = try #require(cluster.workers[victim])
        child.kill()
        let killed = await child.wait(timeout: .seconds(10))
        try #require(killed.signaled && killed.status == SIGKILL, "\(victim) was not running when killed: \(killed)")

        var expected: [Int64: (count: Int64, sum: Int64, max: Int64)] = [:]
        var rows = 0, transactions = 0
        for writer in writers {
            let written = try await writer.value
            rows += written.rows
            transactions += written.transactions
            for (key, v) in written.perKey {
                var e = expected[key] ?? (0, 0, Int64.min)
                e.count += v.count
                e.sum += v.sum
                e.max = max(e.max, v.max)
                expected[key] = e
            }
        }
        // One far-future event per partition: the watermark passes the writers' window, which fires.
        let flush = (0..<Int64(partitions)).map { "(\($0), \($0), 0, 1, 2000000000)" }.joined(separator: ", ")
        try conn.execute("INSERT INTO bids_outbox(key, auction, bidder, price, event_time_ms) VALUES " + flush)

        var sink: [Int64: (count: Int64, sum: Int64, max: Int64)] = [:]
        var rowCount: Int64 = 0, distinct: Int64 = 0
        let complete = await eventually(timeout: .seconds(90), every: .milliseconds(500)) {
            guard let r = try? conn.execute("""
                SELECT auction, "count", sum_price, max_price FROM results WHERE window_start_ms = 0
                """), r.count > 0 else { return false }
            sink = [:]
            for i in 0..<r.count {
                if let k = try? r.int64(i, 0), let c = try? r.int64(i, 1), let s = try? r.int64(i, 2), let m = try? r.int64(i, 3) {
                    sink[k] = (c, s, m)
                }
            }
            return sink.count == expected.count
        }
        if let r = try? conn.execute("SELECT COUNT(*), COUNT(DISTINCT (window_start_ms, auction)) FROM results"), r.count == 1 {
            rowCount = (try? r.int64(0, 0)) ?? -1
            distinct = (try? r.int64(0, 1)) ?? -2
        }
        #expect(complete, "the window of the writers' rows did not fire with every key:\n\(cluster.diagnostics())")
        #expect(rowCount == distinct, "duplicate (window, key) rows in the sink: \(rowCount) rows, \(distinct) distinct")
        var wrong: [String] = []
        for (key, e) in expected {
            guard let got = sink[key] else { wrong.append("auction \(key): missing"); continue }
            if got.count != e.count || got.sum != e.sum || got.max != e.max {
                wrong.append("auction \(key): count \(got.count) sum \(got.sum) max \(got.max), wrote \(e.count) \(e.sum) \(e.max)")
            }
        }
        #expect(wrong.isEmpty, "\(wrong.count) keys differ from what the writers inserted:\n\(wrong.prefix(10).joined(separator: "\n"))")
        let dead = try conn.execute("SELECT COUNT(*) FROM results_dead_letters").int64(0, 0)
        #expect(dead == 0, "\(dead) outbox rows were dead-lettered")
        print("[postgres outbox] \(rows) rows in \(transactions) transactions by 4 writers, \(victim) SIGKILLed mid-run: "
              + "\(sink.count) keys, counts \(wrong.isEmpty ? "all exact" : "WRONG")")
        _ = await cluster.stopGracefully()
    }
}
