import Foundation
import Logging
import SluiceConnectors
import SluiceCore
import SluiceJob
import SluiceStorage

/// Runs one partition under one epoch: restore from the newest valid checkpoint, replay the source
/// from there, checkpoint every interval with the fenced commit, and a last commit when the input
/// ends. A `CommitFenced` error means another owner took the partition: stop at once.
public final class PartitionRunner {
    public let partition: Int
    public let epoch: Int64
    private let job: JobSpec
    private let store: any CheckpointStoring
    private let sink: any Sink
    private var processor: any PartitionProcessing
    private let sources: SourceFactory
    private var source: (any PartitionSource)?
    private var lastSeq: Int64 = 0
    private var lastCommitOffset: Int64 = 0
    private var lastCommit = ContinuousClock.now
    private let interval: Duration
    let stats: RunStats

    public private(set) var finished = false
    /// Lines processed in memory, and covered by the last commit.
    public var offset: Int64 { processor.offset }
    public var committedOffset: Int64 { lastCommitOffset }
    public var watermark: Int64 { processor.watermark }
    public var eventsIn: Int64 { processor.eventsIn }
    /// The last step found no new input in a live source (an outbox): wait before the next.
    public var waitingForInput: Bool { source?.lastReadWasEmpty ?? false }
    /// Lines not yet covered by a commit: processed but uncommitted, plus what the source has left
    /// (estimated for byte-positioned sources; unknown before the first read).
    public var lag: Int64 {
        let uncommitted = processor.offset - lastCommitOffset
        guard !finished, let source else { return uncommitted }
        return uncommitted + (source.remainingLines(linesRead: processor.offset) ?? 0)
    }

    /// `sources`: the input; its partition count and what it delivers choose the processor.
    public init(partition: Int, epoch: Int64, job: JobSpec, store: any CheckpointStoring, sink: any Sink, stats: RunStats,
                sources: SourceFactory) {
        self.partition = partition
        self.epoch = epoch
        self.job = job
        self.store = store
        self.sink = sink
        self.stats = stats
        self.sources = sources
        processor = PartitionRunner.makeProcessor(job: job, partition: partition, sources: sources)
        interval = .milliseconds(job.checkpointIntervalMs)
    }

    /// Windows and aggregates (the integer fast path, or typed records), or (a `changes` job)
    /// change events written as they are.
    static func makeProcessor(job: JobSpec, partition: Int, sources: SourceFactory) -> any PartitionProcessing {
        switch job.kind {
        case .windows where job.pipeline.isIntegerCSV:
            // Row images of integer fields are plain digits, the integer path's CSV; and the
            // sinks write this job's rows in the integer form (`isIntegerCSV` decides both).
            return PartitionProcessor(partition: partition, pipeline: job.pipeline)
        case .windows:
            return RecordProcessor(partition: partition, partitions: sources.partitions, pipeline: job.pipeline,
                                   input: sources.deliversRowImages ? .rowImages : .job)
        case .changes: return ChangeLogProcessor(partition: partition)
        case .view:
            return ViewProcessor(partition: partition, partitions: sources.partitions, pipeline: job.pipeline,
                                 input: sources.deliversRowImages ? .rowImages : .job)
        }
    }

    /// Restores the newest checkpoint that is intact: its row's checksum matches every field and its
    /// state decodes. A corrupt one (caught by either CRC) is rolled back
    /// with the output it committed, and the one before is used; with none, the partition starts over.
    public func start(logger: Logger) async throws {
        let stored = try await store.checkpoints(partition: partition)
        var restored: Checkpoint?
        for checkpoint in stored {
            guard checkpoint.checksumMatches else {
                logger.warning("partition \(partition): checkpoint \(checkpoint.seq) fails its checksum (a damaged or edited row); falling back")
                stats.corruptCheckpoints.add(1)
                continue
            }
            do {
                try processor.restore(checkpoint.state)
                restored = checkpoint
                break
            } catch {
                logger.warning("partition \(partition): checkpoint \(checkpoint.seq) is unreadable (\(error)); falling back")
                stats.corruptCheckpoints.add(1)
            }
        }
        if restored == nil, !stored.isEmpty {
            // Nothing restorable: a fresh processor, and the start of the input.
            processor = PartitionRunner.makeProcessor(job: job, partition: partition, sources: sources)
        }
        if let newest = stored.first, newest.seq != (restored?.seq ?? 0) {
            try await store.rollBack(partition: partition, epoch: epoch, to: restored?.seq ?? 0, writer: sink)
            logger.warning("partition \(partition): rolled back to checkpoint \(restored?.seq ?? 0) (offset \(restored?.offset ?? 0))")
        }
        try sink.recover(partition: partition, epoch: epoch, last: restored)
        lastSeq = restored?.seq ?? 0
        lastCommitOffset = restored?.offset ?? 0
        if restored?.finished == true {
            finished = true
            return
        }
        source = try sources.open(partition: partition, position: restored?.position ?? 0, note: restored?.sourceNote, logger: logger)
        lastCommit = .now
    }

    /// Processes one block of input; commits when the interval has passed or the input has ended.
    /// Returns false once the partition is finished.
    public func step() async throws -> Bool {
        guard !finished, let source else { return false }
        let before = processor.eventsIn
        let more = try source.read { processor.process($0) }
        stats.events.add(processor.eventsIn - before)
        if !more {
            processor.finish()
            try await commit(finished: true)
            finished = true
            return false
        }
        if ContinuousClock.now - lastCommit >= interval { try await commit(finished: false) }
        return true
    }

    /// Commits what was processed so far (a revocation's last checkpoint); nothing if finished.
    public func checkpoint() async throws {
        guard !finished else { return }
        try await commit(finished: false)
    }

    private func commit(finished: Bool) async throws {
        let started = ContinuousClock.now
        let output = processor.takeOutput()
        let seq = lastSeq + 1
        let files = try sink.stage(output, partition: partition, epoch: epoch, seq: seq)
        let checkpoint = Checkpoint(
            partition: partition, seq: seq, epoch: epoch, offset: processor.offset,
            position: source?.position ?? 0, watermark: processor.watermark, finished: finished,
            state: try processor.snapshot(), files: files + (source?.checkpointNote.map { [Checkpoint.sourceNotePrefix + $0] } ?? []))
        try await store.commit(checkpoint, fromOffset: lastCommitOffset, output: output, writer: sink)
        // Only now may a source release what the checkpoint covers (a CDC slot's flush position).
        source?.committed(position: checkpoint.position)
        try sink.publish(files: files, partition: partition, epoch: epoch)
        lastSeq = seq
        lastCommitOffset = processor.offset
        lastCommit = .now
        stats.rows.add(Int64(output.rowCount + output.changes.count + output.viewChanges.count))
        stats.late.add(Int64(output.late.count))
        stats.deadLetters.add(Int64(output.deadLetters.count))
        stats.commits.add(1)
        let nanos = (ContinuousClock.now - started).nanoseconds
        stats.checkpointBytes.add(Int64(checkpoint.state.count))
        stats.checkpointNanos.add(nanos)
        stats.checkpointDuration.recordNanoseconds(nanos)
        stats.checkpointSize.record(checkpoint.state.count)
    }
}
