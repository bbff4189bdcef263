// SluiceBench: the benchmarks behind `sluice bench` (engine, `sluice run`, cluster, coordinator
// heartbeats and assignment, PostgreSQL and CDC), each printing `name: value unit` lines on
// standard output and notes on standard error. The CLI only parses the flags into `Benchmarks`.
import Foundation
import SluiceCoordinator
import SluiceCore
import SluiceJob
import SluiceRuntime
import SluiceWorkload

/// `sluice bench`: throughput figures as `name: value unit` lines. Use a release build. The
/// properties are the command's flags (see the CLI's `Bench` for their help).
public struct Benchmarks: Sendable {
    public var coreEvents = 4_000_000
    public var runEvents = 10_000_000
    public var repeats = 3
    public var dir: String?
    public var only: String?
    public var clusterEvents = 64_000_000
    public var clusterSink = "file"
    public var heartbeatSessions = 200
    public var heartbeatSeconds = 5
    public var heartbeatWindow = 64
    public var postgres: String?

    public init() {}

    /// Runs the benchmarks `only` selects (all by default). Throws `BenchError` when one fails.
    public func run() async throws {
        guard ["file", "sqlite"].contains(clusterSink) else {
            throw BenchError("--cluster-sink must be file or sqlite, got '\(clusterSink)'")
        }
        #if DEBUG
        note("warning: this is a debug build; figures are meaningless. Use `swift build -c release`.")
        #endif
        if only.map({ "coordinator.assign_ms".contains($0) }) ?? true { assignment() }
        try core()
        if only.map({ "core.orders_json".contains($0) }) ?? true { try coreOrders() }
        if only.map({ "run.tumbling checkpoint.overhead_pct".contains($0) }) ?? true { try runBenchmarks() }
        if only.map({ "run.orders_json".contains($0) }) ?? true { try runOrders() }
        let wantsCluster = only.map { "cluster.tumbling".contains($0) } ?? true
        let wantsHeartbeats = only.map { "coordinator.heartbeats_per_s".contains($0) } ?? true
        if wantsCluster || wantsHeartbeats {
            let root = dir ?? (NSTemporaryDirectory() as NSString).appendingPathComponent("sluice-bench-cluster-\(getpid())")
            defer { if dir == nil { try? FileManager.default.removeItem(atPath: root) } }
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            if wantsCluster { try await clusterBenchmarks(root: root) }
            if wantsHeartbeats { try await heartbeatBenchmark(root: root) }
        }
        if let postgres { try await postgresBenchmarks(url: postgres) }
        if only.map({ "kafka.source.events_per_s kafka.source.plain_consumer_events_per_s kafka.sink.rows_per_s kafka.lag_p99_ms kafka.lag_p50_ms".contains($0) }) ?? true {
            let root = dir ?? (NSTemporaryDirectory() as NSString).appendingPathComponent("sluice-bench-kafka-\(getpid())")
            defer { if dir == nil { try? FileManager.default.removeItem(atPath: root) } }
            try KafkaBench(repeats: repeats, root: root, only: only).run()
        }
    }

    // MARK: coordinator: a rebalance for 1,000 workers and 10,000 partitions

    private func assignment() {
        let partitions = 10_000
        var workers = (0..<999).map { "worker-\($0)" }
        let before = Assignment.balance(partitions: partitions, workers: workers, current: [:])
        workers.append("worker-999")
        var best = Double.infinity
        var moved = 0
        for _ in 0..<max(3, repeats) {
            let start = ContinuousClock.now
            let after = Assignment.balance(partitions: partitions, workers: workers, current: before)
            moved = Assignment.moves(from: before, to: after).count
            best = min(best, (ContinuousClock.now - start).seconds)
        }
        print("coordinator.assign_ms: \(String(format: "%.2f", best * 1_000)) ms")
        note("bench: a 1,000th worker joining 999 on 10,000 partitions moves \(moved) partitions")
    }

    // MARK: core: decode and window from CSV bytes in memory, one core

    private func core() throws {
        let config = WorkloadConfig(seed: 7, events: coreEvents, partitions: 8)
        let generator = BidGenerator(config)
        let texts: [[UInt8]] = (0..<config.partitions).map { p in
            var bytes: [UInt8] = []
            for offset in 0..<generator.eventCount(partition: p) { generator.appendLine(partition: p, offset: offset, to: &bytes) }
            return bytes
        }
        let jobs: [(String, Pipeline)] = [
            ("tumbling", .bidsTumbling),
            ("sliding", Pipeline(schema: .bids, keyField: "auction", timeField: "event_time_ms", watermark: WatermarkSpec(),
                                 window: .sliding(sizeMs: 10_000, slideMs: 2_000), aggregates: [AggregateSpec(.count)])),
            ("session", Pipeline(schema: .bids, keyField: "auction", timeField: "event_time_ms", watermark: WatermarkSpec(),
                                 window: .session(gapMs: 5_000), aggregates: [AggregateSpec(.count), AggregateSpec(.sum, "price")])),
        ]
        for (name, pipeline) in jobs where only.map({ "core.\(name)".contains($0) }) ?? true {
            let best = bestSeconds(texts) { p in PartitionProcessor(partition: p, pipeline: pipeline) }
            print("core.\(name).events_per_s: \(Int(Double(coreEvents) / best)) events/s")
        }
    }

    /// The best of `repeats` runs of a fresh processor per partition over every text, in seconds.
    private func bestSeconds(_ texts: [[UInt8]], _ makeProcessor: (Int) -> any PartitionProcessing) -> Double {
        var best = Double.infinity
        for _ in 0..<repeats {
            let start = ContinuousClock.now
            var rows = 0
            for (p, text) in texts.enumerated() {
                let processor = makeProcessor(p)
                _ = text.withUnsafeBytes { processor.process($0) }
                processor.finish()
                rows += processor.takeOutput().rowCount
            }
            best = min(best, (ContinuousClock.now - start).seconds)
            precondition(rows > 0, "the benchmark produced no rows")
        }
        return best
    }

    // MARK: core: the records engine on the orders workload, JSON bytes in memory, one core

    /// Decode JSON, partition check, filter, dedupe, tumbling window (jobs/orders-revenue.yaml).
    private func coreOrders() throws {
        let job = try JobSpec.parse(yaml: OrderGenerator.revenueJob)
        let config = WorkloadConfig(seed: 7, events: coreEvents, partitions: 8)
        let generator = OrderGenerator(config)
        let texts: [[UInt8]] = (0..<config.partitions).map { p in
            var bytes: [UInt8] = []
            for offset in 0..<generator.eventCount(partition: p) { generator.appendLine(partition: p, offset: offset, to: &bytes) }
            return bytes
        }
        let best = bestSeconds(texts) { p in RecordProcessor(partition: p, partitions: config.partitions, pipeline: job.pipeline) }
        print("core.orders_json.events_per_s: \(Int(Double(coreEvents) / best)) events/s")
    }

    // MARK: run: `sluice run` on the orders job, JSON files to SQLite, one lane

    private func runOrders() throws {
        let fm = FileManager.default
        let root = dir ?? (NSTemporaryDirectory() as NSString).appendingPathComponent("sluice-bench-orders-\(getpid())")
        defer { if dir == nil { try? fm.removeItem(atPath: root) } }
        let input = (root as NSString).appendingPathComponent("orders")
        try? fm.removeItem(atPath: input)
        note("bench: writing \(grouped(Int64(runEvents))) orders to \(input)")
        try PartitionFiles.write(WorkloadConfig(seed: 11, events: runEvents, partitions: 8), workload: .orders, format: .json, to: input)
        let jobPath = (root as NSString).appendingPathComponent("orders-revenue.yaml")
        try OrderGenerator.revenueJob.write(toFile: jobPath, atomically: true, encoding: .utf8)
        var best = Double.infinity
        for i in 0..<repeats {
            let output = (root as NSString).appendingPathComponent("orders\(i).db")
            defer { for suffix in ["", "-wal", "-shm"] { try? fm.removeItem(atPath: output + suffix) } }
            best = min(best, try timedSluiceRun(input: input, output: "sqlite:\(output)", intervalMs: 1_000,
                                                name: "orders\(i) (checkpoint every 1000 ms)", job: jobPath))
        }
        print("run.orders_json.events_per_s: \(Int(Double(runEvents) / best)) events/s")
    }

    // MARK: run: `sluice run` end to end, files to SQLite, one core

    private func runBenchmarks() throws {
        let fm = FileManager.default
        let root = dir ?? (NSTemporaryDirectory() as NSString).appendingPathComponent("sluice-bench-\(getpid())")
        defer { if dir == nil { try? fm.removeItem(atPath: root) } }
        let input = (root as NSString).appendingPathComponent("input")
        note("bench: writing \(grouped(Int64(runEvents))) events to \(input)")
        try? fm.removeItem(atPath: input)
        try PartitionFiles.write(WorkloadConfig(seed: 11, events: runEvents, partitions: 8), to: input)

        var withCheckpoints = Double.infinity, without = Double.infinity
        for i in 0..<repeats {
            // Alternate the two so that drift in the machine's load hits both alike.
            withCheckpoints = min(withCheckpoints, try timedRun(root: root, input: input, name: "ckpt\(i)", intervalMs: 1_000))
            without = min(without, try timedRun(root: root, input: input, name: "none\(i)", intervalMs: 1_000_000_000))
        }
        var usage = rusage()
        getrusage(RUSAGE_CHILDREN.rawValue, &usage)
        print("run.tumbling.events_per_s: \(Int(Double(runEvents) / withCheckpoints)) events/s")
        print("run.tumbling.no_checkpoints.events_per_s: \(Int(Double(runEvents) / without)) events/s")
        print("checkpoint.overhead_pct: \(String(format: "%.1f", (withCheckpoints - without) / without * 100)) %")
        print("run.tumbling.peak_rss_mb: \(usage.ru_maxrss / 1024) MB")
        if withCheckpoints < 5 {
            note("bench: warning: the runs lasted \(String(format: "%.2f", withCheckpoints)) s, under five checkpoint intervals, "
                 + "so checkpoint.overhead_pct says little; raise --run-events (80,000,000 lasted about 5 s on a fast 2-core VM)")
        }
    }

    /// Seconds for one `sluice run` child process into a fresh SQLite file (wall time, start-up included).
    private func timedRun(root: String, input: String, name: String, intervalMs: Int) throws -> Double {
        let output = (root as NSString).appendingPathComponent("\(name).db")
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: output + suffix) }
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: output + suffix) } }
        return try timedSluiceRun(input: input, output: "sqlite:\(output)", intervalMs: intervalMs,
                                  name: "\(name) (checkpoint every \(intervalMs) ms)")
    }
}

extension Benchmarks {
    /// `postgres.sink.rows_per_s`, `postgres.run.events_per_s` (PostgresBench.swift), `cdc.*` (CdcBench.swift)
    /// and `view.cdc.rows_per_s` (ViewBench.swift).
    func postgresBenchmarks(url: String) async throws {
        let root = dir ?? (NSTemporaryDirectory() as NSString).appendingPathComponent("sluice-bench-pg-\(getpid())")
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { if dir == nil { try? FileManager.default.removeItem(atPath: root) } }
        let bench = PostgresBench(url: url, runEvents: runEvents, repeats: repeats, root: root)
        if only.map({ "postgres.sink.rows_per_s".contains($0) }) ?? true { try await bench.sink() }
        if only.map({ "postgres.run.events_per_s".contains($0) }) ?? true { try bench.run() }
        if only.map({ "postgres.cdc.events_per_s cdc.events_per_s cdc.lag_p50_ms cdc.lag_p99_ms".contains($0) }) ?? true { try await bench.cdc() }
        if only.map({ "view.cdc.rows_per_s".contains($0) }) ?? true { try await bench.viewCdc() }
    }
}

/// Seconds for `sluice run --input file:INPUT --output OUTPUT`, one lane, as a child process.
func timedSluiceRun(input: String, output: String, intervalMs: Int, name: String, job: String? = nil) throws -> Double {
    try timedSluice(["run", "--input", "file:\(input)", "--output", output, "--parallelism", "1",
                     "--checkpoint-interval-ms", String(intervalMs), "--quiet"] + (job.map { ["--job", $0] } ?? []), name: "run \(name)")
}

/// Seconds for `sluice ARGUMENTS` as a child process, which must exit 0.
func timedSluice(_ arguments: [String], name: String) throws -> Double {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    process.arguments = arguments
    process.standardOutput = FileHandle.nullDevice
    let start = ContinuousClock.now
    try process.run()
    process.waitUntilExit()
    let elapsed = (ContinuousClock.now - start).seconds
    guard process.terminationStatus == 0 else { throw BenchError("bench \(name) failed with status \(process.terminationStatus)") }
    note("bench: \(name): \(String(format: "%.2f", elapsed)) s")
    return elapsed
}

/// A benchmark that could not run or did not finish; the message says which and why.
public struct BenchError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// Prints to standard error (notes go there, figures to standard output).
func note(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}
