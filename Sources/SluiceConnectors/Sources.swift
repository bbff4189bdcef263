import Logging
import Foundation
import SluiceCore
import SluiceJob
import SluiceStorage

/// A replayable partition of the input: yields whole lines from a position, in order.
public protocol PartitionSource: AnyObject {
    /// Where the next read starts; stored in the checkpoint.
    var position: Int64 { get }
    /// Calls `body` with the next run of whole lines (each ends with `\n`, except perhaps the last
    /// line of the input). Returns false, without calling `body`, at the end of the input.
    func read(_ body: (UnsafeRawBufferPointer) -> Void) throws -> Bool
    /// True when the last `read` found nothing new (a live source waiting for input): the caller
    /// should wait a little before reading again.
    var lastReadWasEmpty: Bool { get }
    /// Input left after `position`, in the unit of `position`, when the source can tell.
    var remaining: Int64? { get }
    /// True when `position` counts lines; false when it counts bytes.
    var positionCountsLines: Bool { get }
    /// What the source must know to resume as it began, kept in the checkpoint (nil: nothing).
    var checkpointNote: String? { get }
    /// A checkpoint with this position has committed: what lies before it will never be read
    /// again, so a source that holds input for replay (a replication slot) may release it.
    func committed(position: Int64)
}

extension PartitionSource {
    public var lastReadWasEmpty: Bool { false }
    public var checkpointNote: String? { nil }
    public func committed(position: Int64) {}

    /// Lines left to read: exact for a line-positioned source, else estimated from the mean line
    /// length so far (`linesRead` lines took `position` bytes); nil when unknown.
    public func remainingLines(linesRead: Int64) -> Int64? {
        guard let remaining else { return nil }
        if positionCountsLines { return remaining }
        guard position > 0, linesRead > 0 else { return nil }
        return Int64((Double(remaining) * Double(linesRead) / Double(position)).rounded())
    }
}

public struct SourceError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Opens the partitions of an input through its connector (`ConnectorRegistry`): `file:DIR` (or a
/// bare directory), `gen:…`, a PostgreSQL outbox or PostgreSQL change data capture.
public struct SourceFactory: Sendable {
    private let input: any SourcePartitions
    public var partitions: Int { input.partitions }
    /// True for sources whose records are row images (outbox, CDC of inserts): headerless CSV of
    /// the schema's fields in PostgreSQL's text output, for `RecordDecoder(mode: .postgres)`.
    public var deliversRowImages: Bool { input.deliversRowImages }
    /// Lines per block from the generator, and bytes per block from a file (see `throttled`).
    public private(set) var generatorLinesPerRead: Int64 = 65_536
    public private(set) var fileBlockBytes = 1 << 20

    /// This factory with blocks of about 50 ms of events for partitions paced at `rate` events per
    /// second (nil or not positive: unchanged), so that a throttled partition moves smoothly,
    /// commits at its interval (a commit waits for the end of a block), and leaves the thread pool
    /// free for heartbeats.
    public func throttled(to rate: Double?) -> SourceFactory {
        guard let rate, rate > 0 else { return self }
        var copy = self
        let lines = max(64, min(65_536, Int64(rate / 20)))
        copy.generatorLinesPerRead = lines
        copy.fileBlockBytes = min(1 << 20, Int(lines) * 40)  // the reference workload's lines are 30–40 bytes
        return copy
    }

    /// `changeEvents`: the job writes change events (kind `changes`); `jobName` names its CDC
    /// slots; `schema`: the fields a source that stores columns (outbox, CDC) delivers.
    /// The input of `job`: its schema, its kind, its name (CDC slots) and its partitioner.
    public init(uri: String, job: JobSpec) throws {
        try self.init(uri: uri, schema: job.pipeline.schema, changeEvents: job.kind == .changes, view: job.kind == .view,
                      jobName: job.name, partitioner: job.kind == .changes ? nil : job.pipeline.partitioner,
                      format: job.pipeline.format, keyFields: job.kind == .changes ? [] : job.pipeline.keyFields)
    }

    public init(uri: String, schema: Schema = .bids, changeEvents: Bool = false, view: Bool = false, jobName: String = "sluice",
                partitioner: Partitioner? = nil, format: RecordFormat = .csv(header: false, delimiter: 44),
                keyFields: [String] = []) throws {
        let connector = try ConnectorRegistry.source(uri)
        if schema.fields.last?.name == Pipeline.kafkaTimestamp, !(connector is KafkaConnector) {
            throw SourceError("time: \(Pipeline.kafkaTimestamp) is a Kafka message's timestamp: it needs a kafka:// source, not '\(PostgresURL.redact(uri))'; give the events a time field of their own")
        }
        if changeEvents && !connector.readsChangeEvents {
            throw SourceError("a job of kind changes needs a change-data-capture source (\(ConnectorRegistry.changeSourceUsages)), not '\(PostgresURL.redact(uri))'")
        }
        if view && !connector.readsViewChangelog {
            throw SourceError("a job of kind view keeps the latest row of each key of a changelog: it needs a postgres-cdc:// source, a postgres-outbox://…&op=COLUMN table or a compacted kafka:// topic, not '\(PostgresURL.redact(uri))'")
        }
        input = try connector.openSource(uri: uri, options: SourceOptions(schema: schema, changeEvents: changeEvents, view: view, jobName: jobName, partitioner: partitioner, format: format, keyFields: keyFields))
    }

    /// The partition's source, positioned at `position` (from a checkpoint, or 0), with the note
    /// the checkpoint kept for it.
    public func open(partition: Int, position: Int64, note: String? = nil, logger: Logger = .silent) throws -> any PartitionSource {
        try input.open(partition: partition, position: position, note: note,
                       tuning: SourceTuning(generatorLinesPerRead: generatorLinesPerRead, fileBlockBytes: fileBlockBytes), logger: logger)
    }
}
