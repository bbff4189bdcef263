import Foundation
import Logging
import SluiceConnectors
import SluiceCore
import SluiceJob
import SluiceStorage
import Synchronization

/// The partitions one worker runs, each in a task of its own, started and stopped by the
/// coordinator's grants and revocations. Transport-agnostic: the worker daemon feeds it grants and
/// forwards its events.
public actor PartitionHost {
    public enum Event: Sendable, Equatable {
        /// Checkpointed and stopped after a revocation (or on shutdown).
        case released(partition: Int, epoch: Int64, committedOffset: Int64)
        /// A commit or the claim was refused: another owner has a newer epoch. Dropped.
        case fenced(partition: Int, epoch: Int64)
        /// The input ended and the last checkpoint is committed; still held until revoked.
        case finished(partition: Int, epoch: Int64)
        /// Stopped on an error other than fencing (logged); the coordinator may grant it again.
        case failed(partition: Int, epoch: Int64, reason: String)
    }

    /// A running partition's progress (the one type the coordinator keeps too).
    public typealias Progress = PartitionProgress

    /// Shared between the host and one partition's task.
    final class Control: Sendable {
        enum Stop: Int { case none = 0, release = 1, drop = 2 }
        let stop = Atomic<Int>(0)
        let offset = Atomic<Int64>(0)
        let committedOffset = Atomic<Int64>(0)
        let watermark = Atomic<Int64>(Int64.min)
        let lag = Atomic<Int64>(0)
        let finished = Atomic<Bool>(false)
        let done = Atomic<Bool>(false)
    }

    private struct Running {
        var epoch: Int64
        var control: Control
        var task: Task<Void, Never>
    }

    private let job: JobSpec
    private let sources: SourceFactory
    private let store: any CheckpointStoring
    private let sink: any Sink
    public let stats: RunStats
    /// Events per second per partition, or nil for as fast as possible (the demo throttles).
    private let rate: Double?
    /// Where partition tasks run: a worker uses at most `lanes.count` cores.
    private let lanes: Lanes
    private let logger: Logger
    private var running: [Int: Running] = [:]
    public nonisolated let events: AsyncStream<Event>
    private let emit: AsyncStream<Event>.Continuation

    public init(job: JobSpec, sources: SourceFactory, store: any CheckpointStoring, sink: any Sink, stats: RunStats,
                rate: Double? = nil, lanes: Lanes = Lanes(count: 1), logger: Logger) {
        self.job = job
        self.sources = sources
        self.store = store
        self.sink = sink
        self.stats = stats
        self.rate = rate
        self.lanes = lanes
        var logger = logger
        logger[metadataKey: "job"] = "\(job.name)"
        self.logger = logger
        (events, emit) = AsyncStream.makeStream(of: Event.self)
    }

    public var held: [(partition: Int, epoch: Int64)] {
        running.filter { !$0.value.control.done.load(ordering: .relaxed) }.map { ($0.key, $0.value.epoch) }.sorted { $0.0 < $1.0 }
    }

    public func progress() -> [Progress] {
        running.compactMap { p, r in
            r.control.done.load(ordering: .relaxed) ? nil : Progress(
                partition: p, epoch: r.epoch, offset: r.control.offset.load(ordering: .relaxed),
                committedOffset: r.control.committedOffset.load(ordering: .relaxed),
                watermark: r.control.watermark.load(ordering: .relaxed), lag: r.control.lag.load(ordering: .relaxed),
                finished: r.control.finished.load(ordering: .relaxed))
        }.sorted { $0.partition < $1.partition }
    }

    /// Starts the partition under `epoch` (a newer grant replaces an older task of it).
    public func grant(partition: Int, epoch: Int64) {
        if let existing = running[partition], !existing.control.done.load(ordering: .relaxed) {
            if existing.epoch >= epoch { return }
            existing.control.stop.store(Control.Stop.drop.rawValue, ordering: .relaxed)
        }
        let control = Control()
        let logger = partitionLogger(partition: partition, epoch: epoch)
        let context = TaskContext(job: job, sources: sources, store: store, sink: sink, stats: stats, rate: rate,
                                  logger: logger, emit: emit)
        let lane = lanes.acquire()
        let lanes = self.lanes
        let task = Task.detached(executorPreference: lane.executor) {
            await context.run(partition: partition, epoch: epoch, control: control)
            lanes.release(lane.index)
        }
        running[partition] = Running(epoch: epoch, control: control, task: task)
        logger.info("partition \(partition): granted with epoch \(epoch)")
    }

    /// The host's logger with the partition's metadata.
    private func partitionLogger(partition: Int, epoch: Int64) -> Logger {
        var logger = self.logger
        logger[metadataKey: "partition"] = .stringConvertible(partition)
        logger[metadataKey: "epoch"] = .stringConvertible(epoch)
        return logger
    }

    /// Checkpoints and stops the partition; `.released` follows. A partition not running under
    /// that epoch has nothing uncommitted: it is released at once.
    public func revoke(partition: Int, epoch: Int64) {
        guard let r = running[partition], r.epoch == epoch, !r.control.done.load(ordering: .relaxed) else {
            emit.yield(.released(partition: partition, epoch: epoch, committedOffset: 0))
            return
        }
        r.control.stop.store(Control.Stop.release.rawValue, ordering: .relaxed)
    }

    /// Stops at once without a commit (the coordinator no longer renews it: someone else may own it).
    public func drop(partition: Int, epoch: Int64) {
        guard let r = running[partition], r.epoch == epoch else { return }
        r.control.stop.store(Control.Stop.drop.rawValue, ordering: .relaxed)
        partitionLogger(partition: partition, epoch: epoch).warning("partition \(partition): lease not renewed for epoch \(epoch); stopped")
    }

    /// Asks every partition to checkpoint and stop, without waiting: each then reports `.released`
    /// (or `.fenced`/`.failed` if its last commit does not go through). Graceful shutdown.
    public func revokeAll() {
        for (_, r) in running where !r.control.done.load(ordering: .relaxed) {
            r.control.stop.store(Control.Stop.release.rawValue, ordering: .relaxed)
        }
    }

    /// Stops every partition at once without a commit, without waiting.
    public func dropAll() {
        for (_, r) in running { r.control.stop.store(Control.Stop.drop.rawValue, ordering: .relaxed) }
    }

    /// `revokeAll`, then waits for every partition task to end.
    public func releaseAll() async {
        let all = running
        revokeAll()
        for (_, r) in all { await r.task.value }
    }
}

/// What a partition task needs, copied out of the actor so the task runs off it.
private struct TaskContext: Sendable {
    let job: JobSpec
    let sources: SourceFactory
    let store: any CheckpointStoring
    let sink: any Sink
    let stats: RunStats
    let rate: Double?
    let logger: Logger
    let emit: AsyncStream<PartitionHost.Event>.Continuation

    func run(partition: Int, epoch: Int64, control: PartitionHost.Control) async {
        defer { control.done.store(true, ordering: .relaxed) }
        do {
            guard try await store.claim(partition: partition, epoch: epoch) else {
                logger.warning("partition \(partition): epoch \(epoch) is stale in the store; not started")
                emit.yield(.fenced(partition: partition, epoch: epoch))
                return
            }
            let runner = PartitionRunner(partition: partition, epoch: epoch, job: job, store: store, sink: sink, stats: stats, sources: sources)
            try await runner.start(logger: logger)
            let pace = Pace(rate: rate, startEvents: runner.eventsIn)
            var announcedFinish = false
            while true {
                switch PartitionHost.Control.Stop(rawValue: control.stop.load(ordering: .relaxed)) ?? .none {
                case .drop:
                    return
                case .release:
                    try await runner.checkpoint()
                    emit.yield(.released(partition: partition, epoch: epoch, committedOffset: runner.committedOffset))
                    logger.info("partition \(partition): released at offset \(runner.committedOffset) (epoch \(epoch))")
                    return
                case .none:
                    break
                }
                if runner.finished {
                    if !announcedFinish {
                        announcedFinish = true
                        control.finished.store(true, ordering: .relaxed)
                        control.committedOffset.store(runner.committedOffset, ordering: .relaxed)
                        control.lag.store(0, ordering: .relaxed)
                        emit.yield(.finished(partition: partition, epoch: epoch))
                    }
                    try await Task.sleep(for: .milliseconds(50))
                    continue
                }
                _ = try await runner.step()
                control.offset.store(runner.offset, ordering: .relaxed)
                control.committedOffset.store(runner.committedOffset, ordering: .relaxed)
                control.watermark.store(runner.watermark, ordering: .relaxed)
                control.lag.store(runner.lag, ordering: .relaxed)
                if runner.waitingForInput {
                    // A live source with nothing new, paced or not: waiting for the pace would not
                    // wait at all once behind it, and the lane would spin on empty reads.
                    try await Task.sleep(for: .milliseconds(50))
                } else if let pace {
                    // Sleep while ahead of the pace, in short slices so that a revocation is answered at once.
                    while control.stop.load(ordering: .relaxed) == PartitionHost.Control.Stop.none.rawValue {
                        let wait = pace.wait(eventsIn: runner.eventsIn)
                        guard wait > .zero else { break }
                        try await Task.sleep(for: min(wait, .milliseconds(100)))
                    }
                } else {
                    await Task.yield()
                }
            }
        } catch let fenced as CommitFenced {
            logger.warning("\(fenced); dropped")
            stats.fencedCommits.add(1)
            emit.yield(.fenced(partition: partition, epoch: epoch))
        } catch {
            logger.error("partition \(partition): stopped on error: \(error)")
            stats.failures.add(1)
            emit.yield(.failed(partition: partition, epoch: epoch, reason: "\(error)"))
        }
    }
}
