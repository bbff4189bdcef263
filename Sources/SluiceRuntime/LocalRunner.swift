import Foundation
import SluiceConnectors
import SluiceCore
import SluiceJob
import SluiceStorage

/// `sluice run`: every partition of a job in one process, no coordinator. Each start claims every
/// partition with the next epoch, so a leftover process of an earlier run is fenced off.
public struct LocalRunner: Sendable {
    public struct Options: Sendable {
        public var job: JobSpec
        public var input: String
        public var output: String
        public var statePath: String?
        /// Lanes: partitions are dealt round-robin to this many tasks (1 = one core).
        public var parallelism: Int
        public var progress: Bool
        /// Throttle: events per second per partition (nil: full speed).
        public var rate: Double?

        public init(job: JobSpec, input: String, output: String, statePath: String? = nil,
                    parallelism: Int = ProcessInfo.processInfo.activeProcessorCount, progress: Bool = false,
                    rate: Double? = nil) {
            self.job = job
            self.input = input
            self.output = output
            self.statePath = statePath
            self.parallelism = parallelism
            self.progress = progress
            self.rate = rate
        }
    }

    public struct Summary: Sendable {
        public var partitions: Int
        public var events: Int64
        public var rows: Int64
        public var late: Int64
        public var deadLetters: Int64
        public var commits: Int64
        public var checkpointBytes: Int64
        public var checkpointSeconds: Double
        public var corruptCheckpoints: Int64
        public var seconds: Double
    }

    public let options: Options
    public let stats = RunStats()

    public init(options: Options) { self.options = options }

    public func run(log: @escaping @Sendable (String) -> Void = { _ in }) async throws -> Summary {
        let sources = try SourceFactory(uri: options.input, schema: options.job.pipeline.schema,
                                        changeEvents: options.job.kind == .changes, jobName: options.job.name)
            .throttled(to: options.rate)
        let (sink, store) = try await RunOutput.open(job: options.job, input: options.input, output: options.output,
                                                     statePath: options.statePath, partitions: sources.partitions, log: log)

        let started = ContinuousClock.now
        let lanes = max(1, min(options.parallelism, sources.partitions))
        let job = options.job
        let stats = self.stats
        let rate = options.rate
        let reporter = options.progress ? Task { await Self.report(stats: stats, partitions: sources.partitions, started: started) } : nil
        defer { reporter?.cancel() }

        try await withThrowingTaskGroup(of: Void.self) { group in
            for lane in 0..<lanes {
                group.addTask {
                    var runners: [(runner: PartitionRunner, pace: Pace?)] = []
                    for partition in stride(from: lane, to: sources.partitions, by: lanes) {
                        let epoch = try await store.claimNext(partition: partition)
                        let runner = PartitionRunner(partition: partition, epoch: epoch, job: job, store: store,
                                                     sink: sink, stats: stats)
                        try await runner.start(sources: sources, log: log)
                        if runner.finished {
                            stats.partitionsDone.add(1)
                        } else {
                            runners.append((runner, Pace(rate: rate, startEvents: runner.eventsIn)))
                        }
                    }
                    // Round-robin one block at a time, so every partition of the lane moves forward.
                    // A partition ahead of its pace is passed over; when all are, the lane sleeps
                    // until the first is due.
                    while !runners.isEmpty {
                        var i = 0
                        var firstDue: Duration?
                        var stepped = false
                        while i < runners.count {
                            if let wait = runners[i].pace?.wait(eventsIn: runners[i].runner.eventsIn), wait > .zero {
                                firstDue = min(firstDue ?? wait, wait)
                                i += 1
                                continue
                            }
                            stepped = true
                            if try await runners[i].runner.step() {
                                i += 1
                            } else {
                                stats.partitionsDone.add(1)
                                runners.remove(at: i)
                            }
                        }
                        if !stepped, let firstDue { try await Task.sleep(for: firstDue) }
                    }
                }
            }
            try await group.waitForAll()
        }
        let elapsed = ContinuousClock.now - started
        return Summary(
            partitions: sources.partitions, events: stats.events.current, rows: stats.rows.current,
            late: stats.late.current, deadLetters: stats.deadLetters.current, commits: stats.commits.current,
            checkpointBytes: stats.checkpointBytes.current, checkpointSeconds: Double(stats.checkpointNanos.current) / 1e9,
            corruptCheckpoints: stats.corruptCheckpoints.current, seconds: elapsed.seconds)
    }

    /// A progress line on standard error every second while the run lasts.
    private static func report(stats: RunStats, partitions: Int, started: ContinuousClock.Instant) async {
        var lastEvents: Int64 = 0
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            let events = stats.events.current
            let elapsed = String(format: "%.1f", (ContinuousClock.now - started).seconds)
            let line = "\r\(elapsed)s  events \(grouped(events)) (\(grouped(events - lastEvents))/s)  rows \(grouped(stats.rows.current))  commits \(stats.commits.current)  partitions done \(stats.partitionsDone.current)/\(partitions)   "
            FileHandle.standardError.write(Data(line.utf8))
            lastEvents = events
        }
        FileHandle.standardError.write(Data("\n".utf8))
    }
}

/// 1234567 -> "1,234,567"
public func grouped(_ n: Int64) -> String {
    let digits = String(n.magnitude)
    var out = ""
    for (i, c) in digits.enumerated() {
        if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
        out.append(c)
    }
    return n < 0 ? "-" + out : out
}
