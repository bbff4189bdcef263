import Logging
import Foundation
import SluiceCore
import SluiceStorage
import SluiceWorkload

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
    /// A checkpoint with this position has committed: what lies before it will never be read
    /// again, so a source that holds input for replay (a replication slot) may release it.
    func committed(position: Int64)
}

extension PartitionSource {
    public var lastReadWasEmpty: Bool { false }
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

/// Opens the partitions of an input: `file:DIR`, `gen:…` (a `WorkloadInput`), a PostgreSQL outbox
/// or PostgreSQL change data capture.
public struct SourceFactory: Sendable {
    private enum Kind: Sendable {
        case workload(WorkloadInput, files: [String])
        case outbox(OutboxSpec)
        case cdc(CdcSpec)
    }

    private let kind: Kind
    public let partitions: Int
    /// The outbox and CDC deliver row images (headerless CSV of the schema's fields in PostgreSQL's
    /// text output), whatever the job's format: the records engine decodes them in that mode.
    public var deliversRowImages: Bool {
        switch kind {
        case .outbox, .cdc: true
        case .workload: false
        }
    }
    /// The fields a source that stores columns (the outbox) selects, in this order.
    private let schema: Schema
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

    /// What a CDC source yields: change lines (a `changes` job) or CSV of `schema` for inserts.
    private let changeEvents: Bool

    /// `changeEvents`: the job writes change events (kind `changes`); `jobName` names its CDC slots.
    public init(uri: String, schema: Schema = .bids, changeEvents: Bool = false, jobName: String = "sluice") throws {
        self.schema = schema
        self.changeEvents = changeEvents
        if CdcSpec.isCdc(uri) {
            let spec = try CdcSpec(uri: uri, jobName: jobName)
            kind = .cdc(spec)
            partitions = spec.partitions
            return
        }
        if changeEvents {
            throw SourceError("a job of kind changes needs a change-data-capture source (\(CdcSpec.scheme)…), not '\(PostgresURL.redact(uri))'")
        }
        if OutboxSpec.isOutbox(uri) {
            let spec = try OutboxSpec(uri: uri)
            kind = .outbox(spec)
            partitions = spec.partitions
            return
        }
        let input = try WorkloadInput.parse(uri)
        switch input {
        case .files(let directory):
            let files = try PartitionFiles.list(directory: directory)
            kind = .workload(input, files: files)
            partitions = files.count
        case .generator(let config):
            kind = .workload(input, files: [])
            partitions = config.partitions
        }
    }

    /// The partition's source, positioned at `position` (from a checkpoint, or 0).
    public func open(partition: Int, position: Int64, logger: Logger = .silent) throws -> any PartitionSource {
        switch kind {
        case .workload(.files, let files):
            return try FileSource(path: files[partition], position: position, blockSize: fileBlockBytes)
        case .workload(.generator(let config), _):
            return GeneratorSource(generator: BidGenerator(config), partition: partition, offset: position,
                                   linesPerRead: generatorLinesPerRead)
        case .outbox(let spec):
            return try PostgresOutboxSource(spec: spec, schema: schema, partition: partition, position: position, logger: logger)
        case .cdc(let spec):
            let mode: CdcStreamDecoder.Mode = changeEvents ? .changes : .inserts(fields: schema.fields.map(\.name))
            return try PostgresCdcSource(spec: spec, mode: mode, partition: partition, position: position, logger: logger)
        }
    }
}

/// A partition file read in large blocks; the position is a byte offset. The file must not change
/// while a run reads it: only its size at opening is read, and at the end its size and modification
/// time are checked again, so that a line still being written (a growing file) fails the run
/// instead of being taken, torn, as an event.
public final class FileSource: PartitionSource {
    public private(set) var position: Int64
    private let path: String
    private let fd: FileDescriptor
    private var buffer: [UInt8]
    private var buffered = 0   // bytes in `buffer` not yet handed out
    private var atEnd = false
    private let size: Int64
    private let modified: timespec
    /// Where the next `read(2)` starts.
    private var filePosition: Int64
    public var remaining: Int64? { max(0, size - position) }
    public var positionCountsLines: Bool { false }

    public init(path: String, position: Int64, blockSize: Int = 1 << 20) throws {
        self.path = path
        self.position = position
        filePosition = position
        fd = try FileDescriptor(path: path)
        var info = stat()
        guard fstat(fd.raw, &info) == 0 else {
            throw SourceError("cannot stat '\(path)': \(String(cString: strerror(errno)))")
        }
        size = Int64(info.st_size)
        modified = info.st_mtim
        buffer = [UInt8](repeating: 0, count: blockSize)
        guard lseek(fd.raw, off_t(position), SEEK_SET) == off_t(position) else {
            throw SourceError("cannot seek to byte \(position) of '\(path)': \(String(cString: strerror(errno)))")
        }
    }

    public func read(_ body: (UnsafeRawBufferPointer) -> Void) throws -> Bool {
        while true {
            if !atEnd {
                if buffered == buffer.count {  // a line longer than the buffer: grow it
                    buffer.append(contentsOf: repeatElement(0, count: buffer.count))
                }
                let fdRaw = fd.raw
                let start = buffered
                let wanted = Int(min(Int64(buffer.count - start), max(0, size - filePosition)))
                let n = wanted == 0 ? 0 : buffer.withUnsafeMutableBytes { raw in
                    Glibc.read(fdRaw, raw.baseAddress! + start, wanted)  // the buffer is never empty
                }
                if n < 0 {
                    if errno == EINTR { continue }
                    throw SourceError("cannot read '\(path)': \(String(cString: strerror(errno)))")
                }
                if n == 0 {
                    try checkUnchanged()  // before the last, perhaps unfinished, line goes out
                    atEnd = true
                } else {
                    buffered += n
                    filePosition += Int64(n)
                }
            }
            if buffered == 0 { return false }
            // Hand out everything up to the last line end; at the end of the file, the rest too.
            let cut: Int
            if atEnd {
                cut = buffered
            } else if let lastNewline = buffer[0..<buffered].lastIndex(of: 10) {
                cut = lastNewline + 1
            } else {
                continue  // no whole line yet: read more
            }
            buffer.withUnsafeBytes { raw in body(UnsafeRawBufferPointer(rebasing: raw[0..<cut])) }
            position += Int64(cut)
            buffer.withUnsafeMutableBytes { raw in
                if cut < buffered, let base = raw.baseAddress { memmove(base, base + cut, buffered - cut) }
            }
            buffered -= cut
            return true
        }
    }

    /// Throws if the file's size or modification time differ from when it was opened.
    private func checkUnchanged() throws {
        var info = stat()
        guard fstat(fd.raw, &info) == 0 else {
            throw SourceError("cannot stat '\(path)': \(String(cString: strerror(errno)))")
        }
        let sizeNow = Int64(info.st_size)
        guard sizeNow != size || info.st_mtim.tv_sec != modified.tv_sec || info.st_mtim.tv_nsec != modified.tv_nsec else { return }
        let change = sizeNow != size ? "its size went from \(size) to \(sizeNow) bytes" : "it was modified (same size, \(size) bytes)"
        throw SourceError("input file '\(path)' changed while the run read it (\(change)): the input files of a bounded run must be complete before it starts and must not change; write the file completely (e.g. under another name, then rename it into place) and run again: the run resumes from its last checkpoint")
    }
}

/// Closes its descriptor when the last copy goes away.
final class FileDescriptor {
    let raw: Int32
    init(path: String) throws {
        raw = open(path, O_RDONLY | O_CLOEXEC)
        guard raw >= 0 else { throw SourceError("cannot open '\(path)': \(String(cString: strerror(errno)))") }
    }
    deinit { close(raw) }
}

/// The seeded generator as a source; the position is the event offset.
public final class GeneratorSource: PartitionSource {
    public private(set) var position: Int64
    private let generator: BidGenerator
    private let partition: Int
    private let end: Int64
    private var buffer: [UInt8] = []
    private let linesPerRead: Int64
    public var remaining: Int64? { end - position }
    public var positionCountsLines: Bool { true }

    public init(generator: BidGenerator, partition: Int, offset: Int64, linesPerRead: Int64 = 65_536) {
        self.generator = generator
        self.partition = partition
        position = offset
        end = Int64(generator.eventCount(partition: partition))
        self.linesPerRead = linesPerRead
        buffer.reserveCapacity(Int(linesPerRead) * 40)
    }

    public func read(_ body: (UnsafeRawBufferPointer) -> Void) throws -> Bool {
        guard position < end else { return false }
        let stop = min(end, position + linesPerRead)
        buffer.removeAll(keepingCapacity: true)
        for offset in position..<stop {
            generator.appendLine(partition: partition, offset: Int(offset), to: &buffer)
        }
        buffer.withUnsafeBytes { body($0) }
        position = stop
        return true
    }
}
