import Foundation
import SluiceOps
import SluiceConnectors
import SluiceCore
import SluiceJob
import SluiceRuntime
import SluiceStorage
import Synchronization

/// `cdc.events_per_s`, `cdc.lag_p50_ms`, `cdc.lag_p99_ms`: a writer COPYs rows into a table in
/// transactions while one partition of a `changes` job captures them through logical replication
/// and commits them to the PostgreSQL sink (checkpoint every 200 ms).
/// - The rate: 1,000,000 rows written as fast as the writer can (transactions of 10,000 rows);
///   change events committed per second, from the writer's first row to the last commit.
/// - The lag, from an event's commit in the source to the commit of its checkpoint in the sink,
///   under a steady 50,000 rows/s (transactions of 1,000 rows every 20 ms, 10 s): a backlog
///   would only measure the queue.
extension PostgresBench {
    func cdc() async throws {
        let rate = try await cdcRun(label: "cdcrate", events: 1_000_000, batch: 10_000, rowsPerSecond: nil)
        print("cdc.events_per_s: \(Int(rate.eventsPerSecond)) events/s")
        let steady = try await cdcRun(label: "cdclag", events: 500_000, batch: 1_000, rowsPerSecond: 50_000)
        print("cdc.lag_p50_ms: \(steady.lagP50) ms")
        print("cdc.lag_p99_ms: \(steady.lagP99) ms")
        note("bench: at a steady 50,000 rows/s the capture committed \(Int(steady.eventsPerSecond)) events/s; with a 1,000,000-row burst, lag p50 \(rate.lagP50) ms, p99 \(rate.lagP99) ms (queueing)")
    }

    private struct CdcFigures {
        var eventsPerSecond: Double
        var lagP50: Int64
        var lagP99: Int64
    }

    private func cdcRun(label: String, events: Int, batch: Int, rowsPerSecond: Double?) async throws -> CdcFigures {
        let (db, drop) = try freshDatabase(label)
        let slotPrefix = "sluice_bench_\(label)_\(getpid())"
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
        let store = try PostgresCheckpointStore(url: PostgresURL(db), logger: .lines("store", { note($0) }))
        try await store.bind(job: job.fingerprint, partitions: 1, writer: sink)
        return try await runCapture(job: job, sources: sources, store: store, sink: sink, lags: lags, db: db, events: events,
                                    batch: batch, rowsPerSecond: rowsPerSecond)
    }

    private func runCapture(job: JobSpec, sources: SourceFactory, store: PostgresCheckpointStore, sink: LagSink, lags: LagRecorder,
                            db: String, events: Int, batch: Int, rowsPerSecond: Double?) async throws -> CdcFigures {
        let epoch = try await store.claimNext(partition: 0)
        let runner = PartitionRunner(partition: 0, epoch: epoch, job: job, store: store, sink: sink, stats: RunStats(), sources: sources)
        try await runner.start(logger: SluiceLogging.logger("bench"))  // creates the slot: the writer starts after
        let started = ContinuousClock.now
        let writer = Task.detached { try PostgresBench.write(url: db, events: events, batch: batch, rowsPerSecond: rowsPerSecond) }
        let deadline = started + .seconds(300)
        while lags.count < events {
            guard ContinuousClock.now < deadline else {
                throw BenchError("cdc bench: only \(lags.count) of \(events) change events committed in 300 s")
            }
            _ = try await runner.step()
        }
        let seconds = (ContinuousClock.now - started).seconds
        let writeSeconds = try await writer.value
        let (p50, p99) = lags.percentiles()
        note("bench: \(grouped(Int64(events))) change events in transactions of \(grouped(Int64(batch))) rows; the writer took \(String(format: "%.2f", writeSeconds)) s, capture and commit \(String(format: "%.2f", seconds)) s")
        return CdcFigures(eventsPerSecond: Double(events) / seconds, lagP50: p50, lagP99: p99)
    }

    /// COPYs `events` bids in transactions of `batch` rows, paced to `rowsPerSecond` if given;
    /// returns the seconds it took.
    private static func write(url: String, events: Int, batch: Int, rowsPerSecond: Double?) throws -> Double {
        let conn = try PostgresConnection(url: PostgresURL(url))
        let start = ContinuousClock.now
        var written = 0
        while written < events {
            let n = min(batch, events - written)
            try conn.copyIn(into: "bench_bids", columns: ["auction", "bidder", "price", "event_time_ms"]) { out in
                for i in written..<(written + n) {
                    out.int(Int64(i % 10_000))
                    out.int(Int64(i % 997))
                    out.int(Int64(i % 5_000 + 1))
                    out.int(1_767_225_600_000 + Int64(i))
                    try out.endRow()
                }
            }
            written += n
            if let rowsPerSecond {
                let ahead = Double(written) / rowsPerSecond - (ContinuousClock.now - start).seconds
                if ahead > 0 { usleep(UInt32(ahead * 1_000_000)) }
            }
        }
        return (ContinuousClock.now - start).seconds
    }
}

/// Lags of committed change events, in milliseconds (the partition's task adds, the bench reads).
final class LagRecorder: Sendable {
    private struct State {
        var lags: [Int64] = []
        var pending: [Int64] = []  // commit times of the staged, not yet committed, checkpoint
    }
    private let state = Mutex(State())

    var count: Int { state.withLock { $0.lags.count } }

    func stage(_ commitTimes: [Int64]) { state.withLock { $0.pending = commitTimes } }

    func committed() {
        let now = Int64(Date().timeIntervalSince1970 * 1_000)
        state.withLock { state in
            state.lags += state.pending.map { now - $0 }
            state.pending = []
        }
    }

    func percentiles() -> (p50: Int64, p99: Int64) {
        let sorted = state.withLock { $0.lags.sorted() }
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
