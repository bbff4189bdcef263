import ArgumentParser
import SluiceBench

/// `sluice bench`: the flags of the benchmarks in SluiceBench, which do the work.
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure throughput (prints `name: value unit` lines). Build with -c release first.")

    @Option(help: "Events held in memory for the core benchmark.") var coreEvents: Int = 4_000_000
    @Option(help: "Events for the end-to-end run benchmark.") var runEvents: Int = 10_000_000
    @Option(help: "Repetitions; the best is reported.") var repeats: Int = 3
    @Option(help: "Scratch directory (default: a new temporary one, removed afterwards).") var dir: String?
    @Option(help: "Only the benchmarks whose name contains this (e.g. core.tumbling).") var only: String?
    @Option(help: "Events for the cluster benchmark (8 partitions; enough that a run lasts seconds, not process start).") var clusterEvents: Int = 64_000_000
    @Option(help: "Sink of the cluster benchmark: file (one set of files per partition) or sqlite (one shared file).") var clusterSink = "file"
    @Option(help: "TLS sessions for the coordinator heartbeat benchmark.") var heartbeatSessions: Int = 200
    @Option(help: "Seconds the heartbeat benchmark measures.") var heartbeatSeconds: Int = 5
    @Option(help: "Heartbeats each session keeps in flight (the coordinator's saturation, not a worker's pace).") var heartbeatWindow: Int = 64
    @Option(help: "PostgreSQL server for the postgres.* benchmarks (postgres://…; a database per run is created and dropped).") var postgres: String?

    func run() async throws {
        guard ["file", "sqlite"].contains(clusterSink) else {
            throw userError(ValidationError("--cluster-sink must be file or sqlite, got '\(clusterSink)'"))
        }
        var benchmarks = Benchmarks()
        benchmarks.coreEvents = coreEvents
        benchmarks.runEvents = runEvents
        benchmarks.repeats = repeats
        benchmarks.dir = dir
        benchmarks.only = only
        benchmarks.clusterEvents = clusterEvents
        benchmarks.clusterSink = clusterSink
        benchmarks.heartbeatSessions = heartbeatSessions
        benchmarks.heartbeatSeconds = heartbeatSeconds
        benchmarks.heartbeatWindow = heartbeatWindow
        benchmarks.postgres = postgres
        do {
            try await benchmarks.run()
        } catch let error as BenchError {
            throw ValidationError(error.description)  // as before the move: a usage-style error, exit 2
        }
    }
}
