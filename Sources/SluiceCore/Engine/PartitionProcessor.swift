// The pipeline of one partition: decode, watermark, window operator, with late and dead-letter
// outputs. It consumes complete lines and counts offsets; the caller decides when to checkpoint
// (`snapshot`) and hands the buffered `output` to the commit.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An event that did not make it into a window, with where it came from.
public struct RejectedLine: Sendable, Equatable {
    public var offset: Int64
    public var reason: String
    public var line: String
}

/// Everything a partition produced since the output was last taken.
public struct PartitionOutput: Sendable, Equatable {
    public var rows: RowBuffer
    public var late: [RejectedLine] = []
    public var deadLetters: [RejectedLine] = []
    /// Change events, in order (jobs of kind `changes` only; empty for windowed jobs).
    public var changes: [ChangeRow] = []
    /// Fired windows of a records job (typed values; `rows` stays empty for those).
    public var records: [RecordRow] = []
    /// Events dedupe dropped (records jobs with `dedupe` only).
    public var duplicates: [DuplicateEvent] = []
    /// Each changed key's new state (jobs of kind `view` only), one per key, in first-change order.
    public var viewChanges: [ViewChange] = []

    public init(width: Int) { rows = RowBuffer(width: width) }

    public var isEmpty: Bool {
        rows.isEmpty && late.isEmpty && deadLetters.isEmpty && changes.isEmpty && records.isEmpty && duplicates.isEmpty
            && viewChanges.isEmpty
    }

    /// Result rows, whichever engine made them.
    public var rowCount: Int { rows.count + records.count }
}

public final class PartitionProcessor {
    public let partition: Int
    public let pipeline: Pipeline
    public let layout: AggregateLayout
    private let decoder: LineDecoder
    private let keyIndex: Int
    private let timeIndex: Int
    // (`updateFields`: the schema field feeding each aggregate update, in `EventBatch` column order.)
    private let delay: Int64
    private let windows: any WindowOperator
    private var fields: [Int64]
    private let batch: EventBatch
    /// Where each batched event's line is, for the late output: (offset, start, length) in the text.
    /// (Raw memory: the per-event loop writes it, and an array would check uniqueness each time.)
    private let batchStarts: UnsafeMutablePointer<(offset: Int64, start: Int, count: Int)>
    /// `updateFields` as raw memory, for the same reason.
    private let updateFields: UnsafeMutablePointer<Int>
    private let updateCount: Int
    /// The output column of each sum slot (`sum_price`, `avg_price`), for overflow reasons.
    private let sumColumns: [String]
    private static let batchCapacity = 4_096

    /// The largest event time seen, Int64.min before the first event.
    public private(set) var maxEventTime: Int64 = Int64.min
    /// W: Int64.min before the first event, Int64.max once the input has ended.
    public private(set) var watermark: Int64 = Int64.min
    /// Lines consumed: the offset of the next line.
    public private(set) var offset: Int64 = 0
    public private(set) var output: PartitionOutput
    public private(set) var eventsIn: Int64 = 0

    public init(partition: Int, pipeline: Pipeline) {
        self.partition = partition
        self.pipeline = pipeline
        layout = AggregateLayout(pipeline: pipeline)
        keyIndex = pipeline.schema.index(of: pipeline.keyField) ?? 0
        timeIndex = pipeline.schema.index(of: pipeline.timeField) ?? 0
        updateCount = layout.updates.count
        updateFields = .allocate(capacity: max(1, layout.updates.count))
        for (u, update) in layout.updates.enumerated() { updateFields[u] = update.field }
        var columns = Array(repeating: "", count: layout.width)
        for (aggregate, output) in zip(pipeline.aggregates, layout.outputs) {
            switch output {
            case .slot(let slot), .average(sum: let slot): columns[slot] = aggregate.columnName
            case .count: break
            }
        }
        sumColumns = columns
        decoder = LineDecoder(schema: pipeline.schema, timeIndex: timeIndex)
        delay = pipeline.watermark.maxOutOfOrdernessMs
        fields = Array(repeating: 0, count: pipeline.schema.fields.count)
        batch = EventBatch(stride: layout.updates.count, capacity: PartitionProcessor.batchCapacity)
        batchStarts = .allocate(capacity: PartitionProcessor.batchCapacity)
        batchStarts.initialize(repeating: (0, 0, 0), count: PartitionProcessor.batchCapacity)
        output = PartitionOutput(width: layout.width)
        switch pipeline.window {
        case .tumbling(let size): windows = AlignedWindowOperator(size: size, slide: size, layout: layout)
        case .sliding(let size, let slide): windows = AlignedWindowOperator(size: size, slide: slide, layout: layout)
        case .session(let gap): windows = SessionWindowOperator(gap: gap, layout: layout)
        }
    }

    deinit {
        batchStarts.deallocate()
        updateFields.deallocate()
    }

    public var openWindows: Int { windows.openWindows }
    public var isFinished: Bool { watermark == Int64.max }

    /// Processes `text`, which holds whole lines, each ending with `\n` (the last may lack it only at
    /// the end of the input). Returns the number of lines consumed.
    @discardableResult
    public func process(_ text: UnsafeRawBufferPointer) -> Int {
        guard let base = text.baseAddress else { return 0 }
        let n = text.count
        var start = 0
        var lines = 0
        var fields = self.fields
        fields.withUnsafeMutableBufferPointer { fieldBuffer in
            let values = fieldBuffer.baseAddress!  // one slot per schema field; a schema is never empty
            while start < n {
                let (end, failure) = decoder.decodeLine(base, from: start, count: n, into: values)
                let length = LineDecoder.contentEnd(base, from: start, end: end, count: n) - start  // without a CRLF's \r
                if let failure {
                    let line = UnsafeRawBufferPointer(start: base + start, count: length)
                    output.deadLetters.append(RejectedLine(offset: offset, reason: failure.reason(schema: pipeline.schema),
                                                           line: String(decoding: line, as: UTF8.self)))
                } else {
                    let time = values[timeIndex]
                    let c = batch.count
                    batch.keys[c] = UInt64(bitPattern: values[keyIndex])
                    batch.times[c] = time
                    batch.watermarks[c] = watermark
                    let row = batch.values + c * batch.stride
                    for u in 0..<updateCount { row[u] = values[updateFields[u]] }
                    batch.count = c + 1
                    batchStarts[c] = (offset, start, length)
                    if time > maxEventTime {
                        maxEventTime = time
                        watermark = time - delay
                    }
                    if batch.isFull { flush(text) }
                }
                offset += 1
                lines += 1
                start = end + 1
            }
        }
        flush(text)
        return lines
    }

    /// Hands the batch to the window operator, records its late and overflowing events, fires what
    /// the watermark closed.
    private func flush(_ text: UnsafeRawBufferPointer) {
        guard batch.count > 0 else { return }
        windows.add(batch)
        eventsIn += Int64(batch.count)
        func line(_ r: Int) -> String {
            let at = batchStarts[r]
            return String(decoding: UnsafeRawBufferPointer(rebasing: text[at.start..<(at.start + at.count)]), as: UTF8.self)
        }
        for r in batch.late {
            output.late.append(RejectedLine(offset: batchStarts[r].offset, reason: "late", line: line(r)))
        }
        for o in batch.overflows {
            output.deadLetters.append(RejectedLine(offset: batchStarts[o.index].offset,
                                                   reason: "overflow: \(sumColumns[o.slot]) of window \(o.start)", line: line(o.index)))
        }
        batch.removeAll()
        if watermark >= windows.nextFireTime { windows.fire(watermark: watermark, into: &output.rows) }
    }

    /// The input has ended: W becomes +infinity and every open window fires.
    public func finish() {
        watermark = Int64.max
        windows.fire(watermark: watermark, into: &output.rows)
    }

    /// Hands over what was produced since the last call.
    public func takeOutput() -> PartitionOutput {
        let taken = output
        output = PartitionOutput(width: layout.width)
        output.rows.reserve(like: taken.rows)
        return taken
    }

    // MARK: snapshots

    private static let stateVersion: UInt8 = 1

    /// The operator state (offset, W, windows), framed by `SnapshotEnvelope` (versioned, CRC32C, LZ4).
    public func snapshot() throws -> [UInt8] {
        var writer = BinaryWriter(capacity: 64 + windows.openWindows * (8 + 4 * layout.width))
        writer.write(PartitionProcessor.stateVersion)
        writer.writeVarInt(offset)
        writer.writeVarInt(maxEventTime)
        writer.writeVarInt(watermark)
        writer.writeVarInt(eventsIn)
        windows.encode(into: &writer)
        return try SnapshotEnvelope.seal(writer.bytes)
    }

    /// Restores a snapshot; throws (leaving this processor unusable) when it is corrupt.
    public func restore(_ sealed: [UInt8]) throws {
        var reader = BinaryReader(try SnapshotEnvelope.open(sealed))
        let version = try reader.readUInt8()
        guard version == PartitionProcessor.stateVersion else { throw CodecError.unsupportedVersion(UInt16(version)) }
        offset = try reader.readVarInt()
        maxEventTime = try reader.readVarInt()
        watermark = try reader.readVarInt()
        eventsIn = try reader.readVarInt()
        try windows.decode(from: &reader)
        guard reader.isAtEnd else { throw CodecError.corrupt("trailing bytes after the window state") }
        output = PartitionOutput(width: layout.width)
    }
}

