// Property tests of a job of kind `view` against the independent oracle (`ViewOracle`): random
// changelogs of a table (inserts, updates, deletes, key changes, malformed and filtered rows)
// through the CDC decoder's view mode, the `ViewProcessor`, the fenced commit and the SQLite sink,
// with crashes and restarts, and falls back past a corrupt newest checkpoint. Checked at every
// commit: the partition's rows in the view equal the oracle's view of the table as of the
// checkpoint's position, restricted to the partition's keys; and at the end, the whole view.

import Foundation
@testable import SluiceConnectors
import SluiceCore
import SluiceJob
import SluiceOracle
import SluiceStorage
import SluiceWorkload
import Testing

/// The workload's seeded generator, so that a failing seed replays.
private struct Rng {
    var generator: SplitMix64
    init(state: UInt64) { generator = SplitMix64(seed: state) }
    mutating func below(_ n: Int) -> Int { Int(generator.next() % UInt64(n)) }
    mutating func chance(_ percent: Int) -> Bool { below(100) < percent }
}

private typealias Row = [String: String?]

/// One change of the table, as PostgreSQL's logical replication sends it.
private enum TableChange {
    case insert(Row)
    /// `keyChanged`: PostgreSQL then sends the old key (replica identity default).
    case update(old: Row, new: Row)
    case delete(Row)
}

private struct Transaction {
    var lsn: Int64
    var commitMicros: Int64
    var changes: [TableChange]
    var endLSN: Int64 { lsn + 8 }
}

private let columns = ["id", "tier", "credit", "active"]

private let viewJob = """
    name: customers-view
    kind: view
    schema:
      - {name: id, type: string}
      - {name: tier, type: string, nullable: true}
      - {name: credit, type: decimal, scale: 2, min: 0}
      - {name: active, type: bool}
    key: id
    derive:
      - {name: credit_cents, expr: "credit * 100"}
    filter: "active"
    table: customers_view
    """

/// A random history: each transaction inserts, updates (sometimes the key), or deletes rows;
/// some values are malformed (a dead letter, and the key leaves the view) or below the minimum.
private func history(_ rng: inout Rng, transactions: Int) -> [Transaction] {
    var table: [String: Row] = [:]
    var nextId = 0
    var out: [Transaction] = []
    func value(_ rng: inout Rng) -> Row {
        let tiers: [String?] = ["gold", "silver", "bronze", nil, "a,\"quoted\" tier", ""]
        let credit: String = rng.chance(4) ? "12.345" : rng.chance(4) ? "-1.00" : "\(rng.below(5000)).\(rng.below(10))\(rng.below(10))"
        return ["tier": tiers[rng.below(tiers.count)], "credit": credit, "active": rng.chance(80) ? "t" : "f"]
    }
    var lsn: Int64 = 1_000
    for t in 0..<transactions {
        var changes: [TableChange] = []
        for _ in 0..<(1 + rng.below(4)) {
            let ids = table.keys.sorted()
            let roll = rng.below(100)
            if ids.isEmpty || roll < 40 {
                nextId += 1
                var row = value(&rng)
                row["id"] = "c-\(nextId)"
                table["c-\(nextId)"] = row
                changes.append(.insert(row))
            } else if roll < 80 {
                let id = ids[rng.below(ids.count)]
                guard let old = table[id] else { continue }
                var new = value(&rng)
                if rng.chance(15) {
                    nextId += 1
                    new["id"] = "c-\(nextId)"
                } else {
                    new["id"] = id
                }
                table[id] = nil
                if let newId = new["id"] ?? nil { table[newId] = new }
                changes.append(.update(old: old, new: new))
            } else {
                let id = ids[rng.below(ids.count)]
                guard let old = table.removeValue(forKey: id) else { continue }
                changes.append(.delete(old))
            }
        }
        // Commit times out of order now and then (PostgreSQL's are not strictly in LSN order).
        out.append(Transaction(lsn: lsn, commitMicros: Int64(t) * 1_000_000 - Int64(rng.below(3)) * 700_000, changes: changes))
        lsn += 100
    }
    return out
}

/// The table's rows once every transaction that ends at or before `position` has applied.
private func table(_ history: [Transaction], asOf position: Int64) -> [Row] {
    var rows: [String: Row] = [:]
    for t in history where t.endLSN <= position {
        for change in t.changes {
            switch change {
            case .insert(let row): rows[(row["id"] ?? nil) ?? ""] = row
            case .update(let old, let new):
                rows[(old["id"] ?? nil) ?? ""] = nil
                rows[(new["id"] ?? nil) ?? ""] = new
            case .delete(let old): rows[(old["id"] ?? nil) ?? ""] = nil
            }
        }
    }
    return Array(rows.values)
}

private func tuple(_ row: Row, keyOnly: Bool = false) -> [PgOutputValue] {
    columns.map { c in
        if keyOnly && c != "id" { return .null }
        guard let text = row[c] ?? nil else { return .null }
        return .text(Array(text.utf8))
    }
}

private func messages(_ t: Transaction) -> [PgOutputMessage] {
    var out: [PgOutputMessage] = [.begin(finalLSN: t.lsn, commitTimeMicros: t.commitMicros, xid: 7)]
    for change in t.changes {
        switch change {
        case .insert(let row): out.append(.insert(relation: 1, new: tuple(row)))
        case .update(let old, let new):
            let keyChanged = old["id"] != new["id"]
            out.append(.update(relation: 1, old: keyChanged ? tuple(old, keyOnly: true) : nil, oldIsKeyOnly: keyChanged, new: tuple(new)))
        case .delete(let old): out.append(.delete(relation: 1, old: tuple(old, keyOnly: true), oldIsKeyOnly: true))
        }
    }
    out.append(.commit(commitLSN: t.lsn, endLSN: t.endLSN, commitTimeMicros: t.commitMicros))
    return out
}

private let relationMessage = PgOutputMessage.relation(PgOutputRelation(
    id: 1, namespace: "public", name: "customers", replicaIdentity: UInt8(ascii: "d"),
    columns: columns.map { PgOutputRelation.Column(name: $0, typeOid: 25, isKey: $0 == "id") }))

/// The view's rows of one partition (or all), key → row, read back from SQLite.
private func viewRows(_ db: SQLiteDatabase, job: JobSpec, partition: Int?) throws -> [[Value]: [Value]] {
    let fields = job.pipeline.recordFields
    let names = fields.map { "\"\($0.name)\"" }.joined(separator: ", ")
    let q = try db.prepare("SELECT \(names) FROM customers_view" + (partition == nil ? "" : " WHERE sluice_partition = \(partition!)"))
    var rows: [[Value]: [Value]] = [:]
    while try q.step() {
        var values: [Value] = []
        for (i, f) in fields.enumerated() { values.append(try RecordColumns.read(q, column: Int32(i), as: f.type, table: "customers_view")) }
        rows[[values[0]]] = values
    }
    return rows
}

private func describe(_ rows: [[Value]: [Value]]) -> [String] {
    rows.values.map { $0.map(RecordText.text).joined(separator: "|") }.sorted()
}

/// One partition's life: run, commit at random points, crash and restart at random (sometimes
/// with its newest checkpoint corrupted first), until every transaction is committed.
/// Where the view is kept: the store that commits it, its sink, and how to read it back.
private struct ViewHarness {
    var store: any CheckpointStoring
    var sink: any Sink
    /// Damages a checkpoint's state, as a bad disk would.
    var corrupt: (Int, Int64) async throws -> Void
    /// The view's rows of one partition (nil: all), key → row.
    var read: (Int?) throws -> [[Value]: [Value]]
}

/// The view's rows from PostgreSQL, through the columns' text (timestamps as epoch ms).
private func postgresViewRows(_ conn: PostgresConnection, job: JobSpec, partition: Int?) throws -> [[Value]: [Value]] {
    let fields = job.pipeline.recordFields
    let names = fields.map { "\"\($0.name)\"::text" }.joined(separator: ", ")
    let result = try conn.execute("SELECT \(names) FROM customers_view" + (partition.map { " WHERE sluice_partition = \($0)" } ?? ""))
    var rows: [[Value]: [Value]] = [:]
    for r in 0..<result.count {
        var values: [Value] = []
        for (i, f) in fields.enumerated() {
            guard let text = result.string(r, i) else { values.append(.null); continue }
            values.append(try RecordColumns.parse(text, as: f.type, postgres: true, table: "customers_view"))
        }
        rows[[values[0]]] = values
    }
    return rows
}

private func runPartition(_ p: Int, partitions: Int, history: [Transaction], job: JobSpec, oracle: ViewOracle,
                          harness h: ViewHarness, rng: inout Rng, fallbacks: inout Int) async throws {
    let store = h.store
    let sink = h.sink
    let fields = job.pipeline.schema.fields.map(\.name)
    let end = history.last?.endLSN ?? 0
    var restarts = 0
    while true {
        let epoch = try await store.claimNext(partition: p)
        // Restore as the runner does: the newest intact checkpoint, rolling back past a corrupt one.
        let processor = ViewProcessor(partition: p, partitions: partitions, pipeline: job.pipeline)
        let stored = try await store.checkpoints(partition: p)
        var restored: Checkpoint?
        for c in stored {
            if (try? processor.restore(c.state)) != nil { restored = c; break }
        }
        if let newest = stored.first, newest.seq != (restored?.seq ?? 0) {
            try await store.rollBack(partition: p, epoch: epoch, to: restored?.seq ?? 0, writer: sink)
            fallbacks += 1
        }
        var seq = restored?.seq ?? 0
        var lastOffset = restored?.offset ?? 0
        let decoder = CdcStreamDecoder(table: "customers", keyColumn: "id", partitions: partitions, partition: p,
                                       mode: .view(fields: fields, partitioner: job.pipeline.partitioner), position: restored?.position ?? 0)
        try decoder.handle(message: relationMessage)
        var crashed = false
        for t in history {
            for m in messages(t) { try decoder.handle(message: m) }
            decoder.take { processor.process($0) }
            let last = t.endLSN == end
            if last || rng.chance(30) {
                seq += 1
                let checkpoint = Checkpoint(partition: p, seq: seq, epoch: epoch, offset: processor.offset, position: decoder.position,
                                            watermark: processor.watermark, finished: false, state: try processor.snapshot())
                try await store.commit(checkpoint, fromOffset: lastOffset, output: processor.takeOutput(), writer: sink)
                lastOffset = processor.offset
                // The contract at every committed checkpoint, for this partition's keys.
                let expected = oracle.view(of: table(history, asOf: decoder.position))
                    .filter { oracle.partition(of: $0.key, partitions: partitions) == p }
                let got = try h.read(p)
                #expect(describe(got) == describe(expected), "partition \(p) of \(partitions), checkpoint \(seq) at \(decoder.position), restarts \(restarts), fallbacks \(fallbacks)")
                if describe(got) != describe(expected) {
                    for t in history where t.endLSN <= decoder.position { print("DEBUG", t.lsn, t.changes) }
                    return
                }
                if !last, restarts < 4, rng.chance(15) {
                    // A crash; sometimes the newest checkpoint is found corrupt on restart.
                    if rng.chance(50) { try await h.corrupt(p, seq) }
                    restarts += 1
                    crashed = true
                    break
                }
            } else if restarts < 4, rng.chance(3) {
                restarts += 1  // a crash with uncommitted work: it is replayed
                crashed = true
                break
            }
        }
        if !crashed { return }
    }
}

/// One seed: a random history, 1 to 4 partitions, each run to the end with crashes and fallbacks.
private func check(seed: Int, harness make: (JobSpec, Int) async throws -> ViewHarness) async throws {
    var rng = Rng(state: UInt64(seed) &* 7919)
    let job = try JobSpec.parse(yaml: viewJob)
    let oracle = try ViewOracle(job: job)
    let partitions = 1 + rng.below(4)
    let history = history(&rng, transactions: 20 + rng.below(60))
    let harness = try await make(job, partitions)
    var fallbacks = 0
    for p in 0..<partitions {
        try await runPartition(p, partitions: partitions, history: history, job: job, oracle: oracle, harness: harness,
                               rng: &rng, fallbacks: &fallbacks)
    }
    let expected = oracle.view(of: table(history, asOf: .max))
    #expect(describe(try harness.read(nil)) == describe(expected), "seed \(seed)")
    #expect(!expected.isEmpty)
}

private let postgresURL = ProcessInfo.processInfo.environment["SLUICE_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }

@Suite("Views against the oracle") struct ViewPropertyTests {
    @Test(arguments: 1...40) func sqlite(seed: Int) async throws {
        let dir = NSTemporaryDirectory() + "sluice-view-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try await check(seed: seed) { job, partitions in
            let path = dir + "/view.db"
            let sink = try SinkFactory.open(uri: "sqlite:" + path, job: job)
            let store = try CheckpointStore(path: path)
            try await store.bind(job: job.fingerprint, partitions: partitions, writer: sink)
            let db = try SQLiteDatabase(path: path)
            return ViewHarness(store: store, sink: sink, corrupt: { try await store.overwriteState(partition: $0, seq: $1, state: [1, 2, 3]) },
                               read: { try viewRows(db, job: job, partition: $0) })
        }
    }

    /// The same on PostgreSQL: the set-based upserts, deletes and undo of `ViewTable`.
    @Test(.enabled(if: postgresURL != nil, "SLUICE_TEST_POSTGRES_URL is not set"), arguments: 1...12)
    func postgres(seed: Int) async throws {
        let url = try PostgresTypedSinkTests.freshDatabase("view\(seed)")
        try await check(seed: seed) { job, partitions in
            let sink = try SinkFactory.open(uri: url, job: job)
            let store = try PostgresCheckpointStore(url: PostgresURL(url), logger: .silent)
            try await store.bind(job: job.fingerprint, partitions: partitions, writer: sink)
            let conn = try PostgresConnection(url: PostgresURL(url))
            return ViewHarness(store: store, sink: sink, corrupt: { try await store.overwriteState(partition: $0, seq: $1, state: [1, 2, 3]) },
                               read: { try postgresViewRows(conn, job: job, partition: $0) })
        }
    }
}

@Suite("View jobs refused where they cannot run") struct ViewRefusalTests {
    static let job = try! JobSpec.parse(yaml: viewJob)

    @Test func aViewNeedsAChangelogSource() {
        #expect { try SourceFactory(uri: "file:/tmp", job: Self.job) } throws: { "\($0)".contains("needs a postgres-cdc:// source") }
    }

    @Test func aViewOverCdcIsKeyedByTheSourcesKeyColumn() {
        #expect {
            try SourceFactory(uri: "postgres-cdc://u@127.0.0.1:1/db?table=customers&partitions=2&key=email", job: Self.job)
        } throws: { "\($0)".contains("keyed by the source's key column 'email'") }
    }

    @Test func aViewNeedsADatabaseSink() {
        #expect { try SinkFactory.validate(uri: "file:/tmp/out", job: Self.job) } throws: { "\($0)".contains("write it to sqlite:PATH, postgres://… or kafka://") }
        #expect { try SinkFactory.validate(uri: "postgres://u@127.0.0.1:1/db?mode=upsert", job: Self.job) } throws: { _ in true }
    }
}
