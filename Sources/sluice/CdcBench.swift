import ArgumentParser
import Foundation
import SluiceConnectors
import SluiceCore
import SluiceJob
import SluiceRuntime
import SluiceStorage

/// `cdc.events_per_s`, `cdc.lag_p50_ms`, `cdc.lag_p99_ms`: a writer COPYs rows into a table in
/// transactions of `batch` rows while one partition of a `changes` job captures them through
/// logical replication and commits them to the PostgreSQL sink (checkpoint every 200 ms). The rate
/// is the change events committed per second, from the writer's first row to the last commit;
/// the lag of an event is from its commit in the source to the commit of its checkpoint.
extension PostgresBench {
    func cdc(events: Int = 1_000_000, batch: Int = 10_000) async throws {
        let (db, drop) = try freshDatabase("cdc")
        let slotPrefix = "sluice_bench_\(getpid())"
        let admin = try PostgresConnection(url: PostgresURL(db))
        defer {
            _ = try? admin.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE '\(slotPrefix)%'")
            drop()
        }
        try admin.execute("CREATE TABLE bench_bids(auction bigint NOT NULL, bidder bigint NOT NULL, price bigint NOT NULL, event_time_ms bigint NOT NULL)")
        let job = JobSpec(name: "bench-cdc", kind: .changes, pipeline: .bidsTumbling, table: "changes", checkpointIntervalMs: 200)
        let source = "postgres-cdc://" + db.dropFirst("postgres://".count) + (db.contains("?") ? "&" : "?")
            + "table=bench_bids&partitions=1&key=auction&slot=\(slotPrefix)"
        let sources = try SourceFactory(uri: source, changeEvents: true, jobName: job.name)
        let lags = LagRecorder()
        let sink = LagSink(inner: try PostgresSink(url: PostgresURL(db), job: job), lags: lags)
        let store = try PostgresCheckpointStore(url: PostgresURL(db), log: { note($0) })
        try await store.bind(job: job.fingerprint, partitions: 1, writer: sink)
        try await runCapture(job: job, sources: sources, store: store, sink: sink, lags: lags, db: db, events: events, batch: batch)
    }

    private func runCapture(job: JobSpec, sources: SourceFactory, store: PostgresCheckpointStore, sink: LagSink, lags: LagRecorder,
                            db: String, events: Int, batch: Int) async throws {
        let epoch = try await store.claimNext(partition: 0)
        let runner = PartitionRunner(partition: 0, epoch: epoch, job: job, store: store, sink: sink, stats: RunStats())
        try await runner.start(sources: sources, log: { note($0) })  // creates the slot: the writer starts after
        let started = ContinuousClock.now
        let writer = Task.detached { try PostgresBench.write(url: db, events: events, batch: batch) }
        let deadline = started + .seconds(300)
        while lags.count < events {
            guard ContinuousClock.now < deadline else {
                throw ValidationError("cdc bench: only \(lags.count) of \(events) change events committed in 300 s")
            }
            _ = try await runner.step()
        }
        let seconds = (ContinuousClock.now - started).seconds
        let writeSeconds = try await writer.value
        let (p50, p99) = lags.percentiles()
        print("cdc.events_per_s: \(Int(Double(events) / seconds)) events/s")
        print("cdc.lag_p50_ms: \(p50) ms")
        print("cdc.lag_p99_ms: \(p99) ms")
        note("bench: \(grouped(Int64(events))) change events in transactions of \(grouped(Int64(batch))) rows; the writer took \(String(format: "%.2f", writeSeconds)) s, capture and commit \(String(format: "%.2f", seconds)) s")
    }

    /// COPYs `events` bids in transactions of `batch` rows; returns the seconds it took.
    private static func write(url: String, events: Int, batch: Int) throws -> Double {
        let conn = try PostgresConnection(url: PostgresURL(url))
        let start = ContinuousClock.now
        var written = 0
        while written < events {
            let n = min(batch, events - written)
            try conn.copyIn("COPY bench_bids FROM STDIN") { out in
                for i in written..<(written + n) {
                    out.int(Int64(i % 10_000))
                    out.int(Int64(i % 997))
                    out.int(Int64(i % 5_000 + 1))
                    out.int(1_767_225_600_000 + Int64(i))
                    try out.endRow()
                }
            }
            written += n
        }
        return (ContinuousClock.now - start).seconds
    }
}

/// Lags of committed change events, in milliseconds (the partition's task adds, the bench reads).
final class LagRecorder: @unchecked Sendable {
    private let lock = NSLock()
    private var lags: [Int64] = []
    private var pending: [Int64] = []  // commit times of the staged, not yet committed, checkpoint

    var count: Int { lock.withLock { lags.count } }

    func stage(_ commitTimes: [Int64]) { lock.withLock { pending = commitTimes } }

    func committed() {
        let now = Int64(Date().timeIntervalSince1970 * 1_000)
        lock.withLock {
            lags += pending.map { now - $0 }
            pending = []
        }
    }

    func percentiles() -> (p50: Int64, p99: Int64) {
        let sorted = lock.withLock { lags.sorted() }
        guard !sorted.isEmpty else { return (0, 0) }
        return (sorted[sorted.count / 2], sorted[min(sorted.count - 1, sorted.count * 99 / 100)])
    }
}

/// The PostgreSQL sink, noting when each checkpoint's change events were staged and committed:
/// `publish` runs right after the fenced commit.
struct LagSink: Sink {
    let inner: PostgresSink
    let lags: LagRecorder

    var defaultStatePath: String { inner.defaultStatePath }
    func stage(_ output: PartitionOutput, partition: Int, epoch: Int64, seq: Int64) throws -> [String] {
        lags.stage(output.changes.map(\.commitTimeMs))
        return try inner.stage(output, partition: partition, epoch: epoch, seq: seq)
    }
    func publish(files: [String], partition: Int, epoch: Int64) throws {
        lags.committed()
        try inner.publish(files: files, partition: partition, epoch: epoch)
    }
    func recover(partition: Int, last: Checkpoint?) throws { try inner.recover(partition: partition, last: last) }
    func createTables(in db: SQLiteDatabase) throws { try inner.createTables(in: db) }
    func write(_ output: PartitionOutput, partition: Int, seq: Int64, in db: SQLiteDatabase) throws { try inner.write(output, partition: partition, seq: seq, in: db) }
    func discard(partition: Int, after seq: Int64, in db: SQLiteDatabase) throws { try inner.discard(partition: partition, after: seq, in: db) }
    func createTables(in pg: PostgresConnection) throws { try inner.createTables(in: pg) }
    func write(_ output: PartitionOutput, partition: Int, seq: Int64, in pg: PostgresConnection) throws { try inner.write(output, partition: partition, seq: seq, in: pg) }
    func discard(partition: Int, after seq: Int64, in pg: PostgresConnection) throws { try inner.discard(partition: partition, after: seq, in: pg) }
}
