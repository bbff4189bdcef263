// A job of kind `view` over change data capture, against a real server and real processes: a
// writer inserts, updates (tier, credit, active, and now and then the primary key itself) and
// deletes rows of `customers` while a 3-worker cluster keeps `customers_view` in the same
// database; one worker is SIGKILLed and every walsender of the job is terminated twice. At the
// end the view equals the oracle's view of the table. Meanwhile a sampler checks prefix
// consistency: the view never shows a key's older version after a newer one.

import Foundation
import SluiceConnectors
import SluiceCore
import SluiceDrivers
import SluiceJob
import SluiceOracle
import SluiceStorage
import SluiceWorkload
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension SluiceEndToEndTests.PostgresTests {
    static let customersViewJob = """
        name: customers-view
        kind: view
        schema:
          - {name: id, type: string}
          - {name: tier, type: string, nullable: true}
          - {name: credit, type: decimal, scale: 2, min: 0}
          - {name: active, type: bool}
          - {name: version, type: int64}
        key: id
        derive:
          - {name: gold, expr: "tier = 'gold'"}
        filter: "active"
        table: customers_view
        checkpoint: {interval_ms: 300}
        """

    /// Transactions of 1–4 changes; returns how many changes it made and how many moved a key.
    static func customersWriter(url: String, seed: UInt64, transactions: Int, idPrefix: String = "cust-") throws -> (changes: Int, keyMoves: Int) {
        var rng = SplitMix64(seed: seed)
        let conn = try TestPostgres.connect(url)
        var live: [String] = []
        var next = 0
        var changes = 0, keyMoves = 0
        let tiers = ["gold", "silver", "bronze"]
        for _ in 0..<transactions {
            var rows = live
            try conn.transaction {
                for _ in 0..<(Int(rng.next() % 4) + 1) {
                    let roll = rng.next() % 10
                    let tier: PostgresValue = rng.next() % 5 == 0 ? .null : .text(tiers[Int(rng.next() % 3)])
                    let credit = "\(rng.next() % 5_000).\(rng.next() % 100)"
                    let active = rng.next() % 5 != 0
                    if rows.isEmpty || roll < 4 {
                        next += 1
                        let id = "\(idPrefix)\(next)"
                        try conn.execute("INSERT INTO customers(id, tier, credit, active, version) VALUES ($1, $2, $3::numeric, $4, 1)",
                                         [.text(id), tier, .text(credit), .bool(active)])
                        rows.append(id)
                    } else {
                        let at = Int(rng.next() % UInt64(rows.count))
                        let id = rows[at]
                        if roll < 8 {
                            try conn.execute("UPDATE customers SET tier = $2, credit = $3::numeric, active = $4, version = version + 1 WHERE id = $1",
                                             [.text(id), tier, .text(credit), .bool(active)])
                        } else if roll < 9 {
                            next += 1
                            let moved = "\(idPrefix)\(next)"
                            try conn.execute("UPDATE customers SET id = $2, version = version + 1 WHERE id = $1", [.text(id), .text(moved)])
                            rows[at] = moved
                            keyMoves += 1
                        } else {
                            try conn.execute("DELETE FROM customers WHERE id = $1", [.text(id)])
                            rows.remove(at: at)
                        }
                    }
                    changes += 1
                }
            }
            live = rows
            usleep(UInt32(rng.next() % 15_000))
        }
        return (changes, keyMoves)
    }

    /// The table's rows, column → PostgreSQL's text (nil: NULL).
    static func tableRows(_ conn: PostgresConnection, _ table: String, columns: [String]) throws -> [[String: String?]] {
        let r = try conn.execute("SELECT \(columns.map { "\($0)::text" }.joined(separator: ", ")) FROM \(table)")
        return (0..<r.count).map { row in
            var values: [String: String?] = [:]
            for (i, c) in columns.enumerated() { values[c] = r.string(row, i) }
            return values
        }
    }

    /// The view's rows as `RecordText` lines, sorted.
    static func viewLines(_ conn: PostgresConnection, job: JobSpec) throws -> [String] {
        let fields = job.pipeline.recordFields
        let rows = try tableRows(conn, job.table, columns: fields.map(\.name))
        return rows.map { row in
            fields.map { f -> String in
                guard let text = row[f.name] ?? nil else { return "" }
                switch f.type {
                case .bool: return text == "t" || text == "true" ? "true" : "false"
                default: return text
                }
            }.joined(separator: "|")
        }.sorted()
    }

    static func oracleLines(_ oracle: ViewOracle, table: [[String: String?]]) -> [String] {
        oracle.view(of: table).values.map { $0.map(RecordText.text).joined(separator: "|") }.sorted()
    }

    @Test("CDC view on PostgreSQL: a worker SIGKILLed, walsenders terminated, the server crashed and restarted, keys moved; the view ends equal to the table (oracle), and never shows an older version after a newer one",
          .timeLimit(.minutes(6)))
    func cdcViewEqualsTable() async throws {
        let database = try TestPostgres.freshDatabase("view")
        let setup = try TestPostgres.connect(database)
        try setup.execute("CREATE TABLE customers(id text PRIMARY KEY, tier text, credit numeric(12,2) NOT NULL, active boolean NOT NULL, version bigint NOT NULL)")
        let partitions = 4
        let prefix = "sluice_view_\(UInt32.random(in: 0...UInt32.max))"
        defer { Task.detached { await Self.dropSlots(database, prefix: prefix) } }
        let scratch = try ScratchDir("view-job")
        defer { scratch.remove() }
        let jobPath = scratch.at("job.yaml")
        try Self.customersViewJob.write(toFile: jobPath, atomically: true, encoding: .utf8)
        let job = try JobSpec.parse(yaml: Self.customersViewJob)
        let oracle = try ViewOracle(job: job)
        let source = Self.cdcURI(database, "table=customers&partitions=\(partitions)&key=id&slot=\(prefix)")
        let cluster = try await Cluster(label: "pg-view", input: scratch.path, database: database, inputURI: source, job: jobPath)
        defer { cluster.tearDown() }
        try await cluster.startCoordinator()
        for i in 1...3 { try cluster.startWorker("worker-\(i)", rate: nil) }
        let settled = try await cluster.waitForStatus("3 workers hold the 4 CDC partitions", timeout: .seconds(60)) {
            $0.settled && $0.heldCounts.count == 3
        }
        try #require(await Self.waitForSlots(setup, prefix: prefix, partitions: partitions),
                     "the replication slots were not streaming within 60 s:\n\(cluster.diagnostics())")

        // Prefix consistency: per key, the version the view shows never goes down.
        let sampler = Task.detached { () -> (samples: Int, violations: [String]) in
            guard let c = try? TestPostgres.connect(database) else { return (0, ["the sampler could not connect"]) }
            var seen: [String: Int64] = [:]
            var samples = 0
            var violations: [String] = []
            for _ in 0..<2_000 where !Task.isCancelled {
                if let r = try? c.execute("SELECT id, version FROM customers_view") {
                    samples += 1
                    for row in 0..<r.count {
                        guard let id = r.string(row, 0), let v = try? r.int64(row, 1) else { continue }
                        if let before = seen[id], v < before { violations.append("\(id): version \(v) after \(before)") }
                        seen[id] = max(v, seen[id] ?? v)
                    }
                }
                try? await Task.sleep(for: .milliseconds(100))
            }
            return (samples, violations)
        }
        let writer = Task.detached { try Self.customersWriter(url: database, seed: 91, transactions: 600) }
        try await Task.sleep(for: .seconds(3))
        let victim = try #require(settled.heldCounts.filter { $0.value == 2 }.keys.sorted().first ?? settled.heldCounts.keys.sorted().first)
        let child = try #require(cluster.workers[victim])
        child.kill()
        let killed = await child.wait(timeout: .seconds(10))
        try #require(killed.signaled && killed.status == SIGKILL, "\(victim) was not running when killed: \(killed)")
        var terminated = 0
        for _ in 0..<2 {
            try await Task.sleep(for: .seconds(2))
            let r = try setup.execute("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name LIKE $1 AND active",
                                     [.text(prefix + "\\_p%")])
            terminated += r.count
        }
        let first = try await writer.value
        // The server crashes (immediate stop) and restarts; the writer goes on after it.
        try TestPostgres.stopImmediately()
        try await Task.sleep(for: .seconds(3))
        try TestPostgres.start()
        let second = try Self.customersWriter(url: database, seed: 92, transactions: 300, idPrefix: "cust2-")
        let written = (changes: first.changes + second.changes, keyMoves: first.keyMoves + second.keyMoves)
        let conn = try TestPostgres.connect(database)

        let columns = ["id", "tier", "credit", "active", "version"]
        var expected: [String] = []
        var got: [String] = []
        let caughtUp = await eventually(timeout: .seconds(90), every: .milliseconds(500)) {
            expected = (try? Self.oracleLines(oracle, table: Self.tableRows(conn, "customers", columns: columns))) ?? []
            got = (try? Self.viewLines(conn, job: job)) ?? []
            return got == expected
        }
        try await Task.sleep(for: .seconds(2))  // a late duplicate or stale write would land meanwhile
        got = try Self.viewLines(conn, job: job)
        sampler.cancel()
        let sampled = await sampler.value
        #expect(caughtUp && got == expected, """
            the view (\(got.count) rows) differs from the oracle (\(expected.count) rows): \
            missing \(Set(expected).subtracting(got).sorted().prefix(3)), extra \(Set(got).subtracting(expected).sorted().prefix(3))
            \(cluster.diagnostics())
            """)
        let tableCount = try conn.execute("SELECT COUNT(*) FROM customers").int64(0, 0)
        #expect(expected.count > 50 && Int64(expected.count) < tableCount, "the filter should keep most rows but not all: \(expected.count) of \(tableCount)")
        #expect(written.keyMoves > 10, "only \(written.keyMoves) key changes")
        #expect(sampled.samples >= 20, "only \(sampled.samples) samples of the view")
        #expect(sampled.violations.isEmpty, "\(sampled.violations.count) prefix violations, e.g. \(sampled.violations.prefix(3))")
        #expect(terminated > 0)
        let logs = cluster.workers.values.map { cluster.log($0) }.joined(separator: "\n")
        #expect(logs.contains("is back after"), "the workers did not log their reconnection after the server's restart")
        print("[postgres view] \(written.changes) changes (\(written.keyMoves) key moves), view \(got.count) rows of \(tableCount), "
              + "\(victim) SIGKILLed, \(terminated) walsenders terminated; \(sampled.samples) samples, \(sampled.violations.count) violations")
        _ = await cluster.stopGracefully()
        // `sluice verify` says the same, and notices a row taken out of the view.
        let verify = ["verify", "--job", jobPath, "--input", source, "--output", database]
        let passed = try await sluice(verify, scratch: scratch, label: "verify")
        #expect(passed.exitedWith0 && passed.stdout.contains("missing 0, extra 0, wrong 0"), "sluice verify: \(passed)")
        try conn.execute("DELETE FROM customers_view WHERE id = (SELECT MIN(id) FROM customers_view)")
        let failed = try await sluice(verify, scratch: scratch, label: "verify-tampered")
        #expect(failed.status == 1 && failed.stdout.contains("missing 1, extra 0, wrong 0"), "sluice verify after a row was deleted: \(failed)")
        await Self.dropSlots(database, prefix: prefix)
    }
}

extension SluiceEndToEndTests.PostgresTests {
    @Test("CDC view into a compacted Kafka topic: a record per change, a tombstone per delete; compacted, the topic equals the oracle's view of the table",
          .timeLimit(.minutes(5)))
    func cdcViewIntoKafka() async throws {
        let database = try TestPostgres.freshDatabase("viewkafka")
        let conn = try TestPostgres.connect(database)
        try conn.execute("CREATE TABLE customers(id text PRIMARY KEY, tier text, credit numeric(12,2) NOT NULL, active boolean NOT NULL, version bigint NOT NULL)")
        let partitions = 2
        let prefix = "sluice_viewk_\(UInt32.random(in: 0...UInt32.max))"
        defer { Task.detached { await Self.dropSlots(database, prefix: prefix) } }
        let kafka = try KafkaMockCluster(brokers: 3)
        try kafka.createTopic("customers-view", partitions: 4)
        try kafka.createTopic("customers-view.sluice-progress", partitions: 1)
        let scratch = try ScratchDir("view-kafka")
        defer { scratch.remove() }
        let jobPath = scratch.at("job.yaml")
        try Self.customersViewJob.write(toFile: jobPath, atomically: true, encoding: .utf8)
        let job = try JobSpec.parse(yaml: Self.customersViewJob)
        let oracle = try ViewOracle(job: job)
        let source = Self.cdcURI(database, "table=customers&partitions=\(partitions)&key=id&slot=\(prefix)")
        let cluster = try await Cluster(label: "pg-view-kafka", input: scratch.path, database: database, inputURI: source, job: jobPath)
        defer { cluster.tearDown() }
        let sink = "kafka://\(kafka.bootstrapServers)/customers-view"
        let outcomes = scratch.at("transactions.log")
        cluster.sink = sink
        cluster.workerArguments = ["--state", database]
        cluster.workerEnvironment = [KafkaTransactionOutcomes.environmentVariable: outcomes]
        try await cluster.startCoordinator()
        try cluster.startWorker("worker-1", rate: nil)
        _ = try await cluster.waitForStatus("worker-1 holds both partitions", timeout: .seconds(60)) { $0.settled && $0.heldCounts.count == 1 }
        try #require(await Self.waitForSlots(conn, prefix: prefix, partitions: partitions),
                     "the replication slots were not streaming within 60 s:\n\(cluster.diagnostics())")

        let written = try Self.customersWriter(url: database, seed: 23, transactions: 200)
        let spec = try KafkaSpec(uri: sink)
        let log = KafkaTransactionOutcomes(path: outcomes)
        let fields = job.pipeline.recordFields
        /// The topic compacted: per key, its last record; a tombstone removes the key.
        func compacted() throws -> (lines: [String], records: Int, tombstones: Int) {
            var latest: [String: String] = [:]
            var records = 0, tombstones = 0
            let messages = try KafkaTopicReader.readMessages(spec: spec, outcomes: log) { m -> (String, String?) in
                let key = String(decoding: m.key.map { Array($0) } ?? [], as: UTF8.self)
                guard let value = m.value, let object = try? JSONSerialization.jsonObject(with: Data(value)) as? [String: Any] else { return (key, nil) }
                let line = fields.map { f -> String in
                    switch object[f.name] {
                    case let s as String: return s
                    case let n as NSNumber: return f.type == .bool ? (n.boolValue ? "true" : "false") : n.stringValue
                    default: return ""
                    }
                }.joined(separator: "|")
                return (key, line)
            }
            for (key, line) in messages {
                records += 1
                if let line { latest[key] = line } else { latest[key] = nil; tombstones += 1 }
            }
            return (latest.values.sorted(), records, tombstones)
        }
        let columns = ["id", "tier", "credit", "active", "version"]
        var expected: [String] = []
        var got: (lines: [String], records: Int, tombstones: Int) = ([], 0, 0)
        let caughtUp = await eventually(timeout: .seconds(90), every: .milliseconds(500)) {
            expected = (try? Self.oracleLines(oracle, table: Self.tableRows(conn, "customers", columns: columns))) ?? []
            got = (try? compacted()) ?? ([], 0, 0)
            return got.lines == expected
        }
        #expect(caughtUp, """
            the compacted topic (\(got.lines.count) keys) differs from the oracle (\(expected.count) rows): \
            missing \(Set(expected).subtracting(got.lines).sorted().prefix(3)), extra \(Set(got.lines).subtracting(expected).sorted().prefix(3))
            \(cluster.diagnostics())
            """)
        #expect(got.tombstones > 10, "only \(got.tombstones) tombstones")
        print("[postgres view → kafka] \(written.changes) changes (\(written.keyMoves) key moves): \(got.records) records, \(got.tombstones) tombstones, \(got.lines.count) keys; transactions \(log.counts())")
        _ = await cluster.stopGracefully()
        await Self.dropSlots(database, prefix: prefix)
    }
}

extension SluiceEndToEndTests.PostgresTests {
    @Test("Outbox view on PostgreSQL: rows carry an operation column; upserts and deletes per key, a bad operation dead-lettered; a worker SIGKILLed; the view equals the oracle",
          .timeLimit(.minutes(5)))
    func outboxViewEqualsOracle() async throws {
        let database = try TestPostgres.freshDatabase("outboxview")
        let conn = try TestPostgres.connect(database)
        try conn.execute("""
            CREATE TABLE customer_events(id bigserial PRIMARY KEY, key bigint NOT NULL, op text, tier text, credit numeric(12,2),
                active boolean, txid xid8 NOT NULL DEFAULT pg_current_xact_id())
            """)
        let job = """
            name: outbox-view
            kind: view
            schema:
              - {name: key, type: int64}
              - {name: tier, type: string, nullable: true}
              - {name: credit, type: decimal, scale: 2, min: 0}
              - {name: active, type: bool}
            key: key
            filter: "active"
            table: customers_view
            checkpoint: {interval_ms: 300}
            """
        let scratch = try ScratchDir("outbox-view")
        defer { scratch.remove() }
        let jobPath = scratch.at("job.yaml")
        try job.write(toFile: jobPath, atomically: true, encoding: .utf8)
        let spec = try JobSpec.parse(yaml: job)
        let oracle = try ViewOracle(job: spec)
        let source = "postgres-outbox://" + database.dropFirst("postgres://".count) + (database.contains("?") ? "&" : "?") + "table=customer_events&partitions=4&key=key&op=op"
        let cluster = try await Cluster(label: "pg-outbox-view", input: scratch.path, database: database, inputURI: source, job: jobPath)
        defer { cluster.tearDown() }
        try await cluster.startCoordinator()
        for i in 1...2 { try cluster.startWorker("worker-\(i)", rate: nil) }
        let settled = try await cluster.waitForStatus("2 workers hold the 4 partitions", timeout: .seconds(60)) { $0.settled && $0.heldCounts.count == 2 }

        let writer = Task.detached { () throws -> (rows: [String: [String: String?]], badOps: Int) in
            var rng = SplitMix64(seed: 17)
            let c = try TestPostgres.connect(database)
            var rows: [String: [String: String?]] = [:]
            var badOps = 0
            for _ in 0..<400 {
                try c.transaction {
                    for _ in 0..<(Int(rng.next() % 5) + 1) {
                        let key = String(rng.next() % 300)
                        let roll = rng.next() % 20
                        let op = roll == 0 ? "remove" : roll < 4 ? "delete" : ["insert", "update", "upsert"][Int(rng.next() % 3)]
                        let tier: String? = rng.next() % 5 == 0 ? nil : ["gold", "silver"][Int(rng.next() % 2)]
                        let credit = "\(rng.next() % 5_000).\(rng.next() % 100)"
                        let active = rng.next() % 5 != 0
                        try c.execute("INSERT INTO customer_events(key, op, tier, credit, active) VALUES ($1::bigint, $2, $3, $4::numeric, $5)",
                                      [.text(key), .text(op), tier.map { .text($0) } ?? .null, .text(credit), .bool(active)])
                        switch op {
                        case "remove": badOps += 1
                        case "delete": rows[key] = nil
                        default: rows[key] = ["key": key, "tier": tier, "credit": credit, "active": active ? "t" : "f"]
                        }
                    }
                }
                usleep(5_000)
            }
            return (rows, badOps)
        }
        try await Task.sleep(for: .seconds(1))
        let victim = try #require(settled.heldCounts.keys.sorted().first)
        let child = try #require(cluster.workers[victim])
        child.kill()
        _ = await child.wait(timeout: .seconds(10))
        let written = try await writer.value
        let expected = Self.oracleLines(oracle, table: Array(written.rows.values))
        var got: [String] = []
        let caughtUp = await eventually(timeout: .seconds(90), every: .milliseconds(500)) {
            got = (try? Self.viewLines(conn, job: spec)) ?? []
            return got == expected
        }
        #expect(caughtUp, "the view (\(got.count) rows) differs from the oracle (\(expected.count)): missing \(Set(expected).subtracting(got).sorted().prefix(3)), extra \(Set(got).subtracting(expected).sorted().prefix(3))\n\(cluster.diagnostics())")
        let dead = try conn.execute("SELECT COUNT(*), MIN(reason) FROM customers_view_dead_letters")
        let deadCount = try dead.int64(0, 0)
        #expect(deadCount == Int64(written.badOps) && dead.string(0, 1) == "op column 'op' is 'remove', not insert, update, upsert or delete",
                "\(deadCount) dead letters for \(written.badOps) bad operations: \(dead.string(0, 1) ?? "")")
        print("[postgres outbox view] \(got.count) rows, \(written.badOps) bad operations dead-lettered, \(victim) SIGKILLed")
        _ = await cluster.stopGracefully()
    }
}
