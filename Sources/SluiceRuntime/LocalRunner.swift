import Foundation
import Logging
import SluiceConnectors
import SluiceCore
import SluiceJob
import SluiceStorage

/// `sluice run`: every partition of a job in one process, no coordinator, scheduled by the worker's
/// own `PartitionHost` and `Lanes`. Each start claims every partition with the next epoch, so a
/// leftover process of an earlier run is fenced off.
public struct LocalRunner: Sendable {
    public struct Options: Sendable {
        public var job: JobSpec
        public var input: String
        public var output: String
        public var statePath: String?
        /// Lanes (`Lanes`): at most this many cores; partitions on a lane take turns block by block.
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
        /// Stopped by `requestStop` before every partition finished (each took a last checkpoint).
        public var stopped: Bool
    }

    public let options: Options
    public let stats = RunStats()
    private let stopRequests: AsyncStream<Void>
    private let stopRequest: AsyncStream<Void>.Continuation

    public init(options: Options) {
        self.options = options
        (stopRequests, stopRequest) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Stops the run at its next block: every partition takes a last checkpoint, then `run` returns
    /// (SIGINT). Safe to call from any task, before or during `run`.
    public func requestStop() { stopRequest.yield() }

    /// A partition stopped on its own: fenced off by another run, or failed (the error says why).
    public struct PartitionStopped: Error, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }

    /// Claims every partition with the next epoch and runs them on a `PartitionHost` with
    /// `parallelism` lanes, until every partition has finished its input (or `requestStop`).
    public func run(logger: Logger = .silent) async throws -> Summary {
        let sources = try SourceFactory(uri: options.input, job: options.job)
            .throttled(to: options.rate)
        let (sink, store) = try await RunOutput.open(job: options.job, input: options.input, output: options.output,
                                                     statePath: options.statePath, partitions: sources.partitions, logger: logger)

        let started = ContinuousClock.now
        let stats = self.stats
        let reporter = options.progress ? Task { await Self.report(stats: stats, partitions: sources.partitions, started: started) } : nil
        defer { reporter?.cancel() }

        let lanes = Lanes(count: max(1, min(options.parallelism, sources.partitions)))
        let host = PartitionHost(job: options.job, sources: sources, store: store, sink: sink, stats: stats,
                                 rate: options.rate, lanes: lanes, logger: logger)
        // Each start claims every partition with the next epoch: a leftover process is fenced off.
        for partition in 0..<sources.partitions {
            let epoch = try await store.claimNext(partition: partition)
            await host.grant(partition: partition, epoch: epoch)
        }
        let stopper = Task {
            for await _ in stopRequests {
                await host.revokeAll()
                return
            }
        }
        defer { stopper.cancel() }

        var unfinished = Set(0..<sources.partitions)
        var running = unfinished  // tasks that will still report released, fenced or failed
        var stopped = false
        var failure: PartitionStopped?
        events: for await event in host.events {
            switch event {
            case .finished(let partition, _):
                stats.partitionsDone.add(1)
                unfinished.remove(partition)
                if unfinished.isEmpty { break events }
            case .released(let partition, _, _):
                stopped = true
                running.remove(partition)
                if running.isEmpty { break events }
            case .fenced(let partition, let epoch):
                failure = PartitionStopped(description: "partition \(partition): fenced off (epoch \(epoch)): another run claimed it with a newer epoch")
                break events
            case .failed(_, _, let reason):
                failure = PartitionStopped(description: reason)
                break events
            }
        }
        if let failure {
            await host.dropAll()  // the run fails: nothing more is committed (a store may be away)
            throw failure
        }
        // Every task ends here: the finished ones wait to be released, the others take a last checkpoint.
        await host.releaseAll()
        let elapsed = ContinuousClock.now - started
        let summary = Summary(
            partitions: sources.partitions, events: stats.events.current, rows: stats.rows.current,
            late: stats.late.current, deadLetters: stats.deadLetters.current, commits: stats.commits.current,
            checkpointBytes: stats.checkpointBytes.current, checkpointSeconds: Double(stats.checkpointNanos.current) / 1e9,
            corruptCheckpoints: stats.corruptCheckpoints.current, seconds: elapsed.seconds,
            stopped: stopped && !unfinished.isEmpty)
        return summary
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
