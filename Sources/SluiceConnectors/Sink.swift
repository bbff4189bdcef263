import Logging
import Foundation
import SluiceCore
import SluiceJob
import SluiceStorage

/// A transactional sink. The runner, for every checkpoint: `stage` (files written aside), the fenced
/// commit (which calls `write` inside its transaction), then `publish` (files renamed into place).
/// After a crash or a move, `recover` finishes the publication of the last commit and removes what
/// no commit covers, before the partition resumes.
public protocol Sink: CommitWriter {
    /// Where the checkpoint store lives when the user gives no `--state`.
    var defaultStatePath: String { get }
    /// Writes output aside before the commit; returns the names to list in the checkpoint.
    func stage(_ output: PartitionOutput, partition: Int, epoch: Int64, seq: Int64) throws -> [String]
    /// Makes staged output visible; idempotent.
    func publish(files: [String], partition: Int, epoch: Int64) throws
    /// Before resuming a partition from `last` (nil: from the beginning).
    func recover(partition: Int, last: Checkpoint?) throws
    /// The same, knowing the epoch the new owner holds (a Kafka sink's producer needs it).
    func recover(partition: Int, epoch: Int64, last: Checkpoint?) throws
    /// Refuses output that is not `owner`'s. Called before the checkpoint store opens (`owner.store`
    /// nil: checks only) and again once it is bound (with its id: records the owner if new).
    func admit(_ owner: SinkOwner, statePath: String) throws
}

extension Sink {
    public func recover(partition: Int, epoch: Int64, last: Checkpoint?) throws {
        try recover(partition: partition, last: last)
    }

    /// Database sinks: the store shares their database and its `bind` checks the job.
    public func admit(_ owner: SinkOwner, statePath: String) throws {}
}

/// Who writes a sink's output: a job and the checkpoint store that commits it.
public struct SinkOwner: Sendable, Equatable {
    public var job: String
    public var fingerprint: String
    /// `CheckpointStoring.storeID()`; nil before the store is open.
    public var store: String?

    public init(job: String, fingerprint: String, store: String? = nil) {
        self.job = job
        self.fingerprint = fingerprint
        self.store = store
    }
}

public struct SinkError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Opens a sink through its connector (`ConnectorRegistry`): `file:DIR`, `sqlite:PATH` or
/// `postgres://…[?table=NAME][&mode=upsert]`.
public enum SinkFactory {
    public static func open(uri: String, job: JobSpec, logger: Logger = .silent) throws -> any Sink {
        try checkView(uri: uri, job: job)
        return try ConnectorRegistry.sink(uri).openSink(uri: uri, job: job, logger: logger)
    }

    /// Refuses what `open` would refuse for its URI alone, without touching any file or server
    /// (a coordinator checks the sink it hands to workers at start).
    public static func validate(uri: String, job: JobSpec) throws {
        try checkView(uri: uri, job: job)
        try ConnectorRegistry.sink(uri).validateSink(uri: uri, job: job)
    }

    /// A view is a table updated in place (upserts and deletes in the checkpoint's transaction) or
    /// a compacted topic (a record per change, a tombstone per delete): not a directory of files.
    private static func checkView(uri: String, job: JobSpec) throws {
        guard job.kind == .view else { return }
        guard try ConnectorRegistry.sink(uri).keepsViews else {
            throw SinkError("a job of kind view keeps its rows in a table updated in place, or in a compacted Kafka topic: write it to sqlite:PATH, postgres://… or kafka://…, not '\(PostgresURL.redact(uri))'")
        }
    }
}

/// CSV text of late events and dead letters: `partition,offset,reason,"line"`.
enum RejectedCSV {
    static let header = "partition,offset,reason,line\n"

    static func append(_ rejected: RejectedLine, partition: Int, to out: inout [UInt8]) {
        appendDecimal(Int64(partition), to: &out)
        out.append(44)
        appendDecimal(rejected.offset, to: &out)
        out.append(44)
        quote(rejected.reason, to: &out)
        out.append(44)
        quote(rejected.line, to: &out)
        out.append(10)
    }

    /// One line as `append` writes it (without its `\n`); nil if it is not of that form.
    static func parse(_ line: Substring) -> RejectedEntry? {
        let fields = line.split(separator: ",", maxSplits: 2, omittingEmptySubsequences: false)
        guard fields.count == 3, let partition = Int(fields[0]), let offset = Int(fields[1]) else { return nil }
        var rest = fields[2].utf8[...]
        guard unquote(&rest) != nil, rest.popFirst() == 44, let text = unquote(&rest), rest.isEmpty else { return nil }
        return RejectedEntry(partition: partition, offset: offset, line: text)
    }

    /// Reads one `"…"` field (with `""` for a quote) off the front of `text`.
    private static func unquote(_ text: inout Substring.UTF8View.SubSequence) -> String? {
        guard text.popFirst() == 34 else { return nil }
        var bytes: [UInt8] = []
        while let byte = text.popFirst() {
            if byte == 34 {
                if text.first == 34 {
                    text.removeFirst()
                } else {
                    return String(decoding: bytes, as: UTF8.self)
                }
            }
            bytes.append(byte)
        }
        return nil
    }

    static func quote(_ text: String, to out: inout [UInt8]) {
        out.append(34)
        for byte in text.utf8 {
            if byte == 34 { out.append(34) }
            out.append(byte)
        }
        out.append(34)
    }
}
