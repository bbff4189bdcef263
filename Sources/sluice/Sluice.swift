import ArgumentParser
import Foundation
import SluiceConnectors
import SluiceJob
import SluiceOps
import SluiceOracle
import SluiceVerification
import SluiceRuntime
import SluiceWorkload

@main
struct Sluice: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sluice",
        abstract: "A stream processor: keyed event-time windows, exactly once.",
        version: sluiceVersion,
        subcommands: [Gen.self, Run.self, OracleCommand.self, Verify.self, Bench.self, Certs.self, Coordinator.self, Worker.self, Status.self, Demo.self, Chaos.self, Split.self, Sim.self, KafkaCommands.self, Dev.self])

    /// ArgumentParser's own main, with one change: a usage error (an unknown flag, a missing or
    /// malformed value, a failed validation: its exit code 64) exits 2, Sluice's code for bad
    /// input or configuration, like every other configuration error.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch {
            if exitCode(for: error) == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }
}

/// `sluice --version`: a plain version string, the image tag of the release (k8s/base: `newTag`).
let sluiceVersion = "0.1.0"

/// Prints to standard error.
func note(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// Loads `--job`, or the default tumbling job when none is given.
func loadJob(_ path: String?) throws -> JobSpec {
    guard let path else { return .defaultBidsTumbling }
    return try JobSpec.load(path: path)
}

/// `--rate` of `run` and `worker`: absent (full speed) or a positive, finite number.
func checkRate(_ rate: Double?) throws {
    if let rate, !(rate > 0 && rate.isFinite) {
        throw userError(ValidationError("--rate must be a positive number of events per second per partition, got \(rate)"))
    }
}

/// Turns a library error into a one-line message and exit code 2 (bad input or configuration).
func userError(_ error: Error) -> ExitCode {
    note("error: \(error)")
    return ExitCode(2)
}

struct Gen: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write a generated workload, one file per partition (part-00000.csv, or .json).")

    @Option(help: "Seed: the same seed gives the same events.") var seed: UInt64 = 42
    @Option(help: "Number of events in all.") var events: Int = 1_000_000
    @Option(help: "Number of partitions (files).") var partitions: Int = 8
    @Option(help: "Number of distinct auctions (bids) or customers (orders).") var keys: Int = 10_000
    @Option(help: "Output directory.") var out: String
    @Option(help: "bids (Nexmark bids) or orders (JSON orders with string customer ids, decimals, nulls, duplicates).")
    var workload: String = "bids"
    @Option(help: "csv or json (JSON lines; orders are always JSON).") var format: String?

    func validate() throws {
        guard Workload(rawValue: workload) != nil else { throw ValidationError("--workload must be bids or orders, got '\(workload)'") }
        if let format, LineFormat(rawValue: format) == nil { throw ValidationError("--format must be csv or json, got '\(format)'") }
    }

    func run() throws {
        let config = WorkloadConfig(seed: seed, events: events, partitions: partitions, keys: keys)
        do {
            let workload = Workload(rawValue: workload) ?? .bids
            let lines = format.flatMap(LineFormat.init(rawValue:)) ?? (workload == .orders ? .json : .csv)
            try PartitionFiles.write(config, workload: workload, format: lines, to: out) { written in
                if written < events { note("  \(grouped(Int64(written))) events written") }
            }
        } catch {
            throw userError(error)
        }
        print("wrote \(grouped(Int64(events))) events in \(partitions) partitions to \(out)")
    }
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a job in one process: every partition, checkpointed, exactly once; resumes after a crash.")

    @Option(help: "Job spec (YAML). Default: the tumbling bid job.") var job: String?
    @Option(help: "Input: file:DIR or gen:seed=S,events=N,partitions=P. Default: the job's source.") var input: String?
    @Option(help: "Sink: sqlite:PATH, file:DIR or postgres://…. Default: the job's sink.") var output: String?
    @Option(help: "Checkpoint store: a SQLite path or postgres://…. Default: the sink's database, or DIR/_sluice_state.db.") var state: String?
    @Option(help: "Partitions processed in parallel (1 = one core).") var parallelism: Int = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "Override the job's checkpoint interval (ms).") var checkpointIntervalMs: Int64?
    @Option(help: "Throttle: events per second per partition (default: full speed).") var rate: Double?
    @Flag(help: "No progress line.") var quiet = false
    @OptionGroup var logging: LogOptions

    func run() async throws {
        logging.bootstrap()
        var spec: JobSpec
        do { spec = try loadJob(job) } catch { throw userError(error) }
        if let interval = checkpointIntervalMs {
            guard interval > 0 else { throw userError(ValidationError("--checkpoint-interval-ms must be positive")) }
            spec.checkpointIntervalMs = interval
        }
        guard let input = input ?? spec.source else {
            throw userError(ValidationError("no input: pass --input (file:DIR or gen:…) or set `source:` in the job"))
        }
        guard let output = output ?? spec.sink else {
            throw userError(ValidationError("no output: pass --output (sqlite:PATH or file:DIR) or set `sink:` in the job"))
        }
        guard parallelism > 0 else { throw userError(ValidationError("--parallelism must be at least 1")) }
        try checkRate(rate)
        let runner = LocalRunner(options: .init(job: spec, input: input, output: output, statePath: state,
                                                parallelism: parallelism, progress: !quiet, rate: rate))
        let summary: LocalRunner.Summary
        do {
            summary = try await LocalRunService.run(runner, logger: SluiceLogging.logger("run", ["job": "\(spec.name)"]))
        } catch let second as SignalEscalation.SecondSignal {
            throw ExitCode(128 + second.signal)
        } catch {
            throw userError(error)
        }
        let rate = summary.seconds > 0 ? Double(summary.events) / summary.seconds : 0
        print("""
            \(summary.stopped ? "stopped (every partition checkpointed; run again to resume)" : "done"): \(summary.partitions) partitions, \(grouped(summary.events)) events in \(String(format: "%.2f", summary.seconds)) s \
            (\(grouped(Int64(rate))) events/s); \(grouped(summary.rows)) rows, \(grouped(summary.late)) late, \
            \(grouped(summary.deadLetters)) dead letters, \(summary.commits) commits
            """)
    }
}

struct OracleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "oracle", abstract: "Recompute a job the plainest way: the rows, late and dead-letter sets.")

    @Option(help: "Input: file:DIR or gen:….") var input: String
    @Option(help: "Job spec (YAML). Default: the tumbling bid job.") var job: String?
    @Option(help: "Output directory for results.csv, late.csv, dead_letters.csv.") var out: String

    func run() throws {
        do {
            let spec = try loadJob(job)
            let result = try Oracle.run(pipeline: spec.pipeline, input: try WorkloadInput.parse(input))
            try Oracle.write(result, pipeline: spec.pipeline, to: out)
            print("oracle: \(grouped(Int64(result.rows.count))) rows, \(result.late.count) late, \(result.deadLetters.count) dead letters -> \(out)")
        } catch {
            throw userError(error)
        }
    }
}

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare a sink with the oracle; exit 0 only on an exact match.")

    @Option(help: "Input: file:DIR or gen:… (a view: its postgres-cdc:// source, whose table it must equal).") var input: String
    @Option(help: "Job spec (YAML). Default: the tumbling bid job.") var job: String?
    @Option(help: "Sink: sqlite:PATH, file:DIR, postgres://… or kafka://….") var output: String
    @Option(help: "The checkpoint store, where a kafka:// sink keeps late events and dead letters (default: the sink's default store).") var state: String?

    func run() throws {
        let report: String
        let passed: Bool
        do {
            let spec = try loadJob(job)
            if spec.kind == .view {
                let view = try ViewVerification.verify(job: spec, input: input, output: output)
                (report, passed) = (view.report(), view.passed)
            } else {
                let verification = try Verification.verify(job: spec, input: input, output: output, statePath: state)
                (report, passed) = (verification.report(), verification.passed)
            }
        } catch {
            throw userError(error)
        }
        print(report)
        if !passed { throw ExitCode(1) }
    }
}
