import Foundation
import SluiceConnectors
import SluiceCore
import SluiceJob
import SluiceRuntime
import SluiceStorage
import SluiceWorkload

/// `sluice bench --postgres URL`: the PostgreSQL sink and `sluice run` on PostgreSQL, each measured
/// next to its SQLite counterpart in the same process, alternately, so the ratio is fair. Every
/// PostgreSQL run gets a database of its own, created on the server and dropped afterwards.
struct PostgresBench {
    let url: String
    let runEvents: Int
    let repeats: Int
    let root: String

    /// A new database on the server; returns its URL and a function that drops it.
    func freshDatabase(_ label: String) throws -> (url: String, drop: () -> Void) {
        let admin = try PostgresConnection(url: PostgresURL(url))
        let name = "sluice_bench_\(label)_\(getpid())"
        try admin.execute("DROP DATABASE IF EXISTS \(name)")
        try admin.execute("CREATE DATABASE \(name)")
        guard let schemeEnd = url.range(of: "://") else { throw BenchError("--postgres must be a postgres:// URL") }
        let afterScheme = url[schemeEnd.upperBound...]
        let hostEnd = afterScheme.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? afterScheme.endIndex
        let tail = url[hostEnd...]
        let query = tail.firstIndex(of: "?").map { String(tail[$0...]) } ?? ""
        return (String(url[..<hostEnd]) + "/" + name + query, { _ = try? admin.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)") })
    }

    // MARK: sink: rows committed per second through the fenced commit

    func sink() async throws {
        let job = JobSpec(name: "bench", pipeline: .bidsTumbling, table: "results")
        // Rows as a run makes them: 8 partitions of generated bids, every window fired, one
        // commit per partition.
        let config = WorkloadConfig(seed: 3, events: 2_000_000, partitions: 8)
        let generator = BidGenerator(config)
        var outputs: [(partition: Int, output: PartitionOutput, state: [UInt8])] = []
        for p in 0..<config.partitions {
            var bytes: [UInt8] = []
            for offset in 0..<generator.eventCount(partition: p) { generator.appendLine(partition: p, offset: offset, to: &bytes) }
            let processor = PartitionProcessor(partition: p, pipeline: job.pipeline)
            _ = bytes.withUnsafeBytes { processor.process($0) }
            processor.finish()
            outputs.append((p, processor.takeOutput(), try processor.snapshot()))
        }
        let rows = outputs.reduce(0) { $0 + $1.output.rows.count }
        var bestPG = Double.infinity, bestSQLite = Double.infinity
        for i in 0..<repeats {
            let (db, drop) = try freshDatabase("sink\(i)")
            defer { drop() }
            let pgSink = try PostgresSink(url: PostgresURL(db), job: job)
            let pgStore = try PostgresCheckpointStore(url: PostgresURL(db), logger: .lines("store", { note($0) }))
            bestPG = min(bestPG, try await commitAll(outputs, store: pgStore, sink: pgSink))

            let path = (root as NSString).appendingPathComponent("sink\(i).db")
            defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
            let sqliteStore = try CheckpointStore(path: path)
            bestSQLite = min(bestSQLite, try await commitAll(outputs, store: sqliteStore, sink: SQLiteSink(path: path, job: job)))
        }
        print("postgres.sink.rows_per_s: \(Int(Double(rows) / bestPG)) rows/s")
        print("sqlite.sink.rows_per_s: \(Int(Double(rows) / bestSQLite)) rows/s")
        note("bench: \(grouped(Int64(rows))) rows in \(outputs.count) commits; PostgreSQL/SQLite = \(String(format: "%.2f", bestSQLite / bestPG))")
    }

    private func commitAll(_ outputs: [(partition: Int, output: PartitionOutput, state: [UInt8])],
                           store: any CheckpointStoring, sink: any Sink) async throws -> Double {
        try await store.bind(job: "bench", partitions: outputs.count, writer: sink)
        let start = ContinuousClock.now
        for (p, output, state) in outputs {
            let epoch = try await store.claimNext(partition: p)
            let checkpoint = Checkpoint(partition: p, seq: 1, epoch: epoch, offset: 1, position: 1, watermark: 0,
                                        finished: true, state: state)
            try await store.commit(checkpoint, fromOffset: 0, output: output, writer: sink)
        }
        return (ContinuousClock.now - start).seconds
    }

    // MARK: run: files to the PostgreSQL sink, one lane, checkpoint every second

    func run() throws {
        let input = (root as NSString).appendingPathComponent("pg-input")
        note("bench: writing \(grouped(Int64(runEvents))) events to \(input)")
        try? FileManager.default.removeItem(atPath: input)
        try PartitionFiles.write(WorkloadConfig(seed: 11, events: runEvents, partitions: 8), to: input)
        var bestPG = Double.infinity, bestSQLite = Double.infinity
        for i in 0..<repeats {
            let (db, drop) = try freshDatabase("run\(i)")
            defer { drop() }
            bestPG = min(bestPG, try timed(input: input, output: db, name: "postgres\(i)"))
            let path = (root as NSString).appendingPathComponent("run\(i).db")
            defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
            bestSQLite = min(bestSQLite, try timed(input: input, output: "sqlite:" + path, name: "sqlite\(i)"))
        }
        print("postgres.run.events_per_s: \(Int(Double(runEvents) / bestPG)) events/s")
        print("postgres.run.sqlite_events_per_s: \(Int(Double(runEvents) / bestSQLite)) events/s")
        note("bench: run PostgreSQL/SQLite = \(String(format: "%.2f", bestSQLite / bestPG))")
    }

    private func timed(input: String, output: String, name: String) throws -> Double {
        try timedSluiceRun(input: input, output: output, intervalMs: 1_000, name: name)
    }
}
