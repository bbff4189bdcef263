// Change data capture (postgres-cdc://) against a real server.
// 1. Raw change events: a writer inserts, updates and deletes rows while a cluster runs a job of
//    kind `changes`; a worker is SIGKILLed, so its slots change owner. The sink must hold exactly
//    the writer's changes, per partition in commit (LSN) order, none twice; and no slot's
//    confirmed_flush_lsn may ever pass a committed checkpoint (the source confirms one behind the newest).
// 2. A windowed job over the CDC inserts equals the oracle run on the writer's own log.
// 3. The server crashes and restarts under a running job: the sources reconnect (logged) and the
//    change events are still exactly the writer's.

import Foundation
import SluiceCore
import SluiceJob
import SluiceOracle
import SluiceStorage
import SluiceWorkload
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension SluiceEndToEndTests.PostgresTests {
    /// One row change as the writer made it: columns as text (nil = NULL).
    struct WrittenChange: Equatable, CustomStringConvertible {
        var op: String
        var id: Int64
        var before: [String: String?]?
        var after: [String: String?]?
        var description: String { "\(op) \(id) before \(before.map { "\($0)" } ?? "-") after \(after.map { "\($0)" } ?? "-")" }
    }

    /// A row of `accounts` as the writer holds it.
    struct Account {
        var id: Int64
        var name: String
        var balance: Int64
        var note: String?
        /// The columns as text, as the change events carry them.
        var columns: [String: String?] { ["id": "\(id)", "name": name, "balance": "\(balance)", "note": note] }
    }

    /// Transactions of 1–4 changes on `accounts` (insert a new id, update or delete a live one),
    /// with short pauses; returns its log, in commit order (one connection, so commit order is
    /// program order).
    static func cdcWriter(url: String, seed: UInt64, transactions: Int, firstID: Int64 = 1) throws -> [WrittenChange] {
        var rng = SplitMix64(seed: seed)
        let conn = try TestPostgres.connect(url)
        var live: [Int64: Account] = [:]
        var nextID = firstID
        var log: [WrittenChange] = []
        for _ in 0..<transactions {
            var changes: [WrittenChange] = []
            var rows = live
            try conn.transaction {
                for _ in 0..<(Int(rng.next() % 4) + 1) {
                    let roll = rng.next() % 10
                    let ids = rows.keys.sorted()
                    if ids.isEmpty || roll < 5 {
                        let row = Account(id: nextID, name: "n\(rng.next() % 1_000) \"q\",\ttab", balance: Int64(rng.next() % 10_000),
                                          note: rng.next() % 3 == 0 ? nil : "note \(nextID)")
                        nextID += 1
                        try conn.execute("INSERT INTO accounts(id, name, balance, note) VALUES ($1, $2, $3, $4)",
                                         [.int(row.id), .text(row.name), .int(row.balance), row.note.map { .text($0) } ?? .null])
                        rows[row.id] = row
                        changes.append(WrittenChange(op: "insert", id: row.id, before: nil, after: row.columns))
                    } else if let old = rows[ids[Int(rng.next() % UInt64(ids.count))]] {
                        if roll < 8 {
                            var new = old
                            new.balance = Int64(rng.next() % 10_000)
                            new.note = rng.next() % 2 == 0 ? nil : "updated \(rng.next() % 100)"
                            try conn.execute("UPDATE accounts SET balance = $2, note = $3 WHERE id = $1",
                                             [.int(old.id), .int(new.balance), new.note.map { .text($0) } ?? .null])
                            rows[old.id] = new
                            changes.append(WrittenChange(op: "update", id: old.id, before: old.columns, after: new.columns))
                        } else {
                            try conn.execute("DELETE FROM accounts WHERE id = $1", [.int(old.id)])
                            rows[old.id] = nil
                            changes.append(WrittenChange(op: "delete", id: old.id, before: old.columns, after: nil))
                        }
                    }
                }
            }
            live = rows
            log += changes
            usleep(UInt32(rng.next() % 20_000))
        }
        return log
    }

    /// What the slot sampler saw.
    struct SlotSamples: Sendable {
        var samples = 0
        var violations: [String] = []
        /// Per slot: the first confirmed_flush_lsn seen and the last one.
        var first: [String: Int64] = [:]
        var last: [String: Int64] = [:]
        var ownerPids: [String: Set<Int64>] = [:]
    }

    /// Every 100 ms: each slot's confirmed_flush_lsn, then the committed checkpoints' positions of
    /// each partition (read after, so they can only be newer). The source confirms one checkpoint
    /// behind the newest (so a fallback past a corrupt newest one is still replayable): a slot may
    /// not pass its partition's second-newest checkpoint (the store keeps two), except at its
    /// creation point, where it stays until the partition has two checkpoints.
    static func sampleSlots(url: String, prefix: String, partitions: Int, until deadline: ContinuousClock.Instant) async -> SlotSamples {
        var result = SlotSamples()
        guard let conn = try? TestPostgres.connect(url) else {
            result.violations.append("the sampler could not connect")
            return result
        }
        var creation: [String: Int64] = [:]
        for _ in 0..<3_000 where ContinuousClock.now < deadline && !Task.isCancelled {
            guard let slots = try? conn.execute("""
                SELECT slot_name, (confirmed_flush_lsn - '0/0'::pg_lsn)::bigint, COALESCE(active_pid, 0)
                FROM pg_replication_slots WHERE slot_name LIKE $1
                """, [.text(prefix + "\\_p%")]),
                  let committed = try? conn.execute("""
                      SELECT partition, MAX(position), CASE WHEN COUNT(*) > 1 THEN MIN(position) ELSE 0 END
                      FROM sluice_checkpoints GROUP BY partition
                      """)
            else {
                try? await Task.sleep(for: .milliseconds(100))
                continue
            }
            var newest: [Int: Int64] = [:], previous: [Int: Int64] = [:]
            for r in 0..<committed.count {
                if let p = try? committed.int64(r, 0), let v = try? committed.int64(r, 1), let w = try? committed.int64(r, 2) {
                    newest[Int(p)] = v
                    previous[Int(p)] = w
                }
            }
            for r in 0..<slots.count {
                guard let name = slots.string(r, 0), let flushed = try? slots.int64(r, 1),
                      let p = Int(name.split(separator: "p").last ?? "") else { continue }
                let checkpoint = newest[p] ?? 0
                if result.first[name] == nil {
                    result.first[name] = flushed
                    // Before a second checkpoint the source confirms nothing, so a slot first seen
                    // then is still at its creation point (and must stay there until one exists).
                    if (previous[p] ?? 0) == 0 { creation[name] = flushed }
                }
                result.last[name] = flushed
                if let pid = try? slots.int64(r, 2), pid != 0 { result.ownerPids[name, default: []].insert(pid) }
                let allowed = previous[p] ?? 0
                if flushed > max(allowed, creation[name] ?? 0) {
                    result.violations.append("\(name): confirmed_flush_lsn \(flushed) is past partition \(p)'s second-newest committed checkpoint \(allowed) (newest \(checkpoint))")
                }
            }
            result.samples += 1
            try? await Task.sleep(for: .milliseconds(100))
        }
        return result
    }

    static func cdcURI(_ database: String, _ parameters: String) -> String {
        "postgres-cdc://" + database.dropFirst("postgres://".count) + (database.contains("?") ? "&" : "?") + parameters
    }

    /// Waits until the `partitions` slots exist and are streaming (so no write happens before them).
    static func waitForSlots(_ conn: PostgresConnection, prefix: String, partitions: Int) async -> Bool {
        await eventually(timeout: .seconds(60), every: .milliseconds(200)) {
            let r = try? conn.execute("SELECT COUNT(*) FROM pg_replication_slots WHERE slot_name LIKE $1 AND active",
                                      [.text(prefix + "\\_p%")])
            return (try? r?.int64(0, 0)) == Int64(partitions)
        }
    }

    /// Drops the test's slots once their workers are gone (slots outlive databases' connections).
    static func dropSlots(_ url: String, prefix: String) async {
        guard let conn = try? TestPostgres.connect(url) else { return }
        _ = await eventually(timeout: .seconds(20), every: .milliseconds(250)) {
            _ = try? conn.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE $1 AND NOT active",
                                  [.text(prefix + "\\_p%")])
            let left = try? conn.execute("SELECT COUNT(*) FROM pg_replication_slots WHERE slot_name LIKE $1", [.text(prefix + "\\_p%")])
            return (try? left?.int64(0, 0)) == 0
        }
    }

    static func parseRow(_ json: String?) -> [String: String?]? {
        guard let json, let data = json.data(using: .utf8),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        return object.mapValues { $0 as? String }
    }

    /// The `changes` table holds exactly `written`, per partition in LSN order, none twice.
    static func expectSinkEquals(_ written: [WrittenChange], conn: PostgresConnection, partitions: Int) throws {
        let r = try conn.execute("SELECT sluice_partition, lsn, lsn_index, table_name, op, before, after FROM changes ORDER BY lsn, lsn_index")
        let distinct = try conn.execute("SELECT COUNT(DISTINCT (lsn, lsn_index)) FROM changes").int64(0, 0)
        #expect(Int(distinct) == r.count, "\(r.count - Int(distinct)) change events are in the sink twice")
        var got: [Int: [WrittenChange]] = [:]
        var misplaced: [String] = []
        for i in 0..<r.count {
            let partition = Int(try r.int64(i, 0))
            let op = r.string(i, 4) ?? "?"
            let before = Self.parseRow(r.string(i, 5)), afterRow = Self.parseRow(r.string(i, 6))
            let id = Int64(((op == "delete" ? before : afterRow)?["id"] ?? nil) ?? "") ?? -1
            if Int(id % Int64(partitions)) != partition { misplaced.append("id \(id) in partition \(partition)") }
            if r.string(i, 3) != "public.accounts" { misplaced.append("table \(r.string(i, 3) ?? "NULL")") }
            got[partition, default: []].append(WrittenChange(op: op, id: id, before: before, after: afterRow))
        }
        #expect(misplaced.isEmpty, "\(misplaced.prefix(5))")
        let expected = Dictionary(grouping: written) { Int($0.id % Int64(partitions)) }
        for p in 0..<partitions {
            let e = expected[p] ?? [], g = got[p] ?? []
            let firstDiff = zip(e, g).enumerated().first { $0.element.0 != $0.element.1 }
            #expect(e == g, "partition \(p): \(g.count) changes in the sink, \(e.count) written; first difference at \(firstDiff.map { "\($0.offset): wrote \($0.element.0), sink \($0.element.1)" } ?? "the end")")
        }

    }

    @Test("CDC on PostgreSQL: raw change events while a worker is SIGKILLed and slots change owner: exactly the writer's changes, in LSN order; confirmed flush never passes a committed checkpoint",
          .timeLimit(.minutes(6)))
    func cdcChangeEventsExactlyOnce() async throws {
        let database = try TestPostgres.freshDatabase("cdc")
        let conn = try TestPostgres.connect(database)
        try conn.execute("CREATE TABLE accounts(id bigint PRIMARY KEY, name text NOT NULL, balance bigint NOT NULL, note text)")
        let partitions = 4
        let prefix = "sluice_e2e_\(UInt32.random(in: 0...UInt32.max))"
        defer { Task.detached { await Self.dropSlots(database, prefix: prefix) } }
        let scratch = try ScratchDir("cdc-job")
        defer { scratch.remove() }
        let job = scratch.at("job.yaml")
        try """
            name: cdc-changes
            kind: changes
            table: changes
            checkpoint: {interval_ms: 300}
            """.write(toFile: job, atomically: true, encoding: .utf8)
        let source = Self.cdcURI(database, "table=accounts&partitions=\(partitions)&key=id&slot=\(prefix)")
        let cluster = try await Cluster(label: "pg-cdc", input: scratch.path, database: database, inputURI: source, job: job)
        defer { cluster.tearDown() }
        try await cluster.startCoordinator()
        for i in 1...3 { try cluster.startWorker("worker-\(i)", rate: nil) }
        let settled = try await cluster.waitForStatus("3 workers hold the 4 CDC partitions", timeout: .seconds(60)) {
            $0.settled && $0.heldCounts.count == 3
        }
        let streaming = await Self.waitForSlots(conn, prefix: prefix, partitions: partitions)
        try #require(streaming, "the 4 replication slots were not streaming within 60 s:\n\(cluster.diagnostics())")

        let sampler = Task.detached { await Self.sampleSlots(url: database, prefix: prefix, partitions: partitions, until: .now + .seconds(240)) }
        let writer = Task.detached { try Self.cdcWriter(url: database, seed: 77, transactions: 700) }
        try await Task.sleep(for: .seconds(3))
        let victim = try #require(settled.heldCounts.filter { $0.value == 2 }.keys.sorted().first ?? settled.heldCounts.keys.sorted().first)
        let moved = settled.partitions(of: victim)
        let child = try #require(cluster.workers[victim])
        child.kill()
        let killed = await child.wait(timeout: .seconds(10))
        try #require(killed.signaled && killed.status == SIGKILL, "\(victim) was not running when killed: \(killed)")
        // Connection failures: the server ends every walsender of the test's slots, twice, while
        // the writer goes on. The sources must reconnect at their positions (logged) and lose or
        // double nothing.
        var terminated = 0
        for _ in 0..<2 {
            try await Task.sleep(for: .seconds(2))
            let r = try conn.execute("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name LIKE $1 AND active",
                                     [.text(prefix + "\\_p%")])
            terminated += r.count
        }
        let written = try await writer.value

        var sinkRows = 0
        let complete = await eventually(timeout: .seconds(90), every: .milliseconds(500)) {
            sinkRows = Int((try? conn.execute("SELECT COUNT(*) FROM changes").int64(0, 0)) ?? 0)
            return sinkRows >= written.count
        }
        try await Task.sleep(for: .seconds(2))  // anything extra (a duplicate) would land meanwhile
        let after = try await cluster.status()
        sampler.cancel()
        let samples = await sampler.value
        #expect(complete, "the sink holds \(sinkRows) of the writer's \(written.count) changes:\n\(cluster.diagnostics())")

        try Self.expectSinkEquals(written, conn: conn, partitions: partitions)

        #expect(samples.samples >= 20, "only \(samples.samples) samples of the slots")
        #expect(samples.violations.isEmpty, "\(samples.violations.count) violations, e.g. \(samples.violations.prefix(3))")
        for p in 0..<partitions {
            let slot = "\(prefix)_p\(p)"
            let advanced = (samples.last[slot] ?? 0) > (samples.first[slot] ?? Int64.max)
            #expect(advanced, "\(slot)'s confirmed flush position never moved (no feedback?): \(samples.first[slot] ?? -1) → \(samples.last[slot] ?? -1)")
        }
        let logs = cluster.workers.filter { $0.key != victim }.map { cluster.log($0.value) }.joined(separator: "\n")
        #expect(terminated > 0 && logs.contains("PostgreSQL unavailable") && logs.contains("is back after"),
                "\(terminated) walsenders terminated; the workers did not log their reconnection:\n\(cluster.diagnostics())")
        for p in moved {
            #expect(after.row(p)?.owner != victim && after.row(p)?.owner != nil, "partition \(p) did not move off \(victim): \(after)")
            let pids = samples.ownerPids["\(prefix)_p\(p)"] ?? []
            #expect(pids.count >= 2, "slot \(prefix)_p\(p) was streamed by \(pids.count) walsender(s); its owner should have changed")
        }
        print("[postgres cdc] \(written.count) changes (\(written.filter { $0.op == "insert" }.count) inserts, "
              + "\(written.filter { $0.op == "update" }.count) updates, \(written.filter { $0.op == "delete" }.count) deletes), "
              + "\(victim) SIGKILLed (partitions \(moved) moved), \(terminated) walsenders terminated; \(samples.samples) slot samples, \(samples.violations.count) violations")
        _ = await cluster.stopGracefully()
        await Self.dropSlots(database, prefix: prefix)
    }

    @Test("CDC on PostgreSQL: a windowed job over the captured inserts equals the oracle on the writer's log",
          .timeLimit(.minutes(5)))
    func cdcWindowedEqualsOracle() async throws {
        let database = try TestPostgres.freshDatabase("cdcwin")
        let conn = try TestPostgres.connect(database)
        try conn.execute("""
            CREATE TABLE bids(id bigserial PRIMARY KEY, auction bigint NOT NULL, bidder bigint NOT NULL,
                              price bigint NOT NULL, event_time_ms bigint NOT NULL)
            """)
        let partitions = 3
        let prefix = "sluice_e2e_\(UInt32.random(in: 0...UInt32.max))"
        defer { Task.detached { await Self.dropSlots(database, prefix: prefix) } }
        let scratch = try ScratchDir("cdc-window")
        defer { scratch.remove() }
        let jobPath = scratch.at("job.yaml")
        try """
            name: cdc-bids
            window: {kind: tumbling, size_ms: 10000}
            aggregates: [count, {sum: price}, {max: price}]
            checkpoint: {interval_ms: 400}
            """.write(toFile: jobPath, atomically: true, encoding: .utf8)
        let source = Self.cdcURI(database, "table=bids&partitions=\(partitions)&key=auction&slot=\(prefix)")
        let cluster = try await Cluster(label: "pg-cdc-win", input: scratch.path, database: database, inputURI: source, job: jobPath)
        defer { cluster.tearDown() }
        try await cluster.startCoordinator()
        for i in 1...2 { try cluster.startWorker("worker-\(i)", rate: nil) }
        _ = try await cluster.waitForStatus("2 workers hold the 3 partitions", timeout: .seconds(60)) { $0.settled && $0.heldCounts.count == 2 }
        let streaming = await Self.waitForSlots(conn, prefix: prefix, partitions: partitions)
        try #require(streaming, "the replication slots were not streaming within 60 s:\n\(cluster.diagnostics())")

        // The writer: bids in batches (some out of order, a few late), plus updates and deletes
        // that a windowed job ignores. Its log is the oracle's input, one file per partition.
        var rng = SplitMix64(seed: 5)
        var files = Array(repeating: "", count: partitions)
        var time: Int64 = 1_767_225_600_000
        for _ in 0..<150 {
            var values: [String] = []
            for _ in 0..<(Int(rng.next() % 20) + 1) {
                time += Int64(rng.next() % 40)
                let skew = rng.next() % 100 < 5 ? Int64(rng.next() % 20_000) : 0
                let auction = Int64(rng.next() % 50), bidder = Int64(rng.next() % 500), price = Int64(rng.next() % 1_000) + 1
                values.append("(\(auction), \(bidder), \(price), \(time - skew))")
                files[Int(auction) % partitions] += "\(auction),\(bidder),\(price),\(time - skew)\n"
            }
            try conn.transaction {
                try conn.execute("INSERT INTO bids(auction, bidder, price, event_time_ms) VALUES " + values.joined(separator: ", "))
                if rng.next() % 3 == 0 { try conn.execute("UPDATE bids SET price = price + 1 WHERE id % 7 = 0") }
                if rng.next() % 5 == 0 { try conn.execute("DELETE FROM bids WHERE id % 11 = 0") }
            }
        }
        // One far-future bid per partition: every writer window fires.
        let flushTime = time + 1_000_000
        try conn.execute("INSERT INTO bids(auction, bidder, price, event_time_ms) VALUES "
                         + (0..<partitions).map { "(\($0), 0, 1, \(flushTime))" }.joined(separator: ", "))
        for p in 0..<partitions { files[p] += "\(p),0,1,\(flushTime)\n" }

        let pipeline = try JobSpec.load(path: jobPath).pipeline
        var oracleRows: [String] = []
        var oracleLate: [String] = []
        for p in 0..<partitions {
            let result = Oracle.run(pipeline: pipeline, partition: p, text: Array(files[p].utf8))
            // The flush bids' own windows never fire in the live job (nothing comes after them).
            oracleRows += result.rows.filter { (Int64($0.split(separator: ",")[0]) ?? 0) < flushTime - 10_000 }
            oracleLate += result.late.map { "\($0.partition):\($0.offset)" }
        }
        var sinkRows: [String] = []
        let complete = await eventually(timeout: .seconds(90), every: .milliseconds(500)) {
            guard let r = try? conn.execute("SELECT window_start_ms, auction, \"count\", sum_price, max_price FROM results") else { return false }
            sinkRows = (0..<r.count).map { i in (0..<5).map { r.string(i, $0) ?? "NULL" }.joined(separator: ",") }
            return sinkRows.count >= oracleRows.count
        }
        let late = try conn.execute("SELECT partition, \"offset\" FROM results_late")
        let sinkLate = (0..<late.count).map { "\(late.string($0, 0) ?? ""):\(late.string($0, 1) ?? "")" }
        #expect(complete, "\(sinkRows.count) rows in the sink, the oracle has \(oracleRows.count):\n\(cluster.diagnostics())")
        #expect(sinkRows.sorted() == oracleRows.sorted(), "sink and oracle differ: only in sink \(Set(sinkRows).subtracting(oracleRows).prefix(5)), only in oracle \(Set(oracleRows).subtracting(sinkRows).prefix(5))")
        #expect(sinkLate.sorted() == oracleLate.sorted(), "late events differ: sink \(sinkLate.count), oracle \(oracleLate.count)")
        let dead = try conn.execute("SELECT COUNT(*) FROM results_dead_letters").int64(0, 0)
        #expect(dead == 0, "\(dead) captured inserts were dead-lettered")
        print("[postgres cdc windowed] \(oracleRows.count) window rows and \(oracleLate.count) late bids equal the oracle's")
        _ = await cluster.stopGracefully()
        await Self.dropSlots(database, prefix: prefix)
    }
}

extension SluiceEndToEndTests.PostgresTests {
    @Test("CDC on PostgreSQL: the server crashes (immediate stop) and restarts while the job streams, between two writer phases: the raw change events are still exactly the writer's",
          .timeLimit(.minutes(5)))
    func cdcSurvivesServerRestart() async throws {
        let database = try TestPostgres.freshDatabase("cdcrestart")
        let conn = try TestPostgres.connect(database)
        try conn.execute("CREATE TABLE accounts(id bigint PRIMARY KEY, name text NOT NULL, balance bigint NOT NULL, note text)")
        let partitions = 2
        let prefix = "sluice_e2e_\(UInt32.random(in: 0...UInt32.max))"
        defer { Task.detached { await Self.dropSlots(database, prefix: prefix) } }
        let scratch = try ScratchDir("cdc-restart")
        defer { scratch.remove() }
        let job = scratch.at("job.yaml")
        try "name: cdc-restart\nkind: changes\ntable: changes\ncheckpoint: {interval_ms: 300}\n".write(toFile: job, atomically: true, encoding: .utf8)
        let source = Self.cdcURI(database, "table=accounts&partitions=\(partitions)&key=id&slot=\(prefix)")
        let cluster = try await Cluster(label: "pg-cdc-restart", input: scratch.path, database: database, inputURI: source, job: job)
        defer { cluster.tearDown() }
        try await cluster.startCoordinator()
        try cluster.startWorker("worker-1", rate: nil)
        _ = try await cluster.waitForStatus("worker-1 holds both partitions", timeout: .seconds(60)) { $0.settled && $0.heldCounts.count == 1 }
        let streaming = await Self.waitForSlots(conn, prefix: prefix, partitions: partitions)
        try #require(streaming, "the replication slots were not streaming within 60 s:\n\(cluster.diagnostics())")

        var written = try Self.cdcWriter(url: database, seed: 9, transactions: 150)
        try TestPostgres.stopImmediately()
        try await Task.sleep(for: .seconds(3))
        try TestPostgres.start()
        written += try Self.cdcWriter(url: database, seed: 10, transactions: 150, firstID: 1_000_000)

        let check = try TestPostgres.connect(database)
        var count = 0
        let complete = await eventually(timeout: .seconds(120), every: .milliseconds(500)) {
            count = Int((try? check.execute("SELECT COUNT(*) FROM changes").int64(0, 0)) ?? 0)
            return count >= written.count
        }
        try await Task.sleep(for: .seconds(2))
        #expect(complete, "the sink holds \(count) of the writer's \(written.count) changes:\n\(cluster.diagnostics())")
        try Self.expectSinkEquals(written, conn: check, partitions: partitions)
        let log = cluster.workers.values.map { cluster.log($0) }.joined(separator: "\n")
        #expect(log.contains("cdc source") && log.contains("is back after"), "the sources did not log their reconnection:\n\(cluster.diagnostics())")
        print("[postgres cdc restart] \(written.count) changes across a server crash and restart, exactly once")
        _ = await cluster.stopGracefully()
        await Self.dropSlots(database, prefix: prefix)
    }
}
