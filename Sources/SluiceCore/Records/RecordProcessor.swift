// The pipeline of one partition of a records job (typed JSON or CSV events; every job the integer
// fast path, PartitionProcessor, does not take). Per event, in the contract's order:
//
//   decode → partition check → watermark → derive → filter → late check → dedupe → windows
//
// An undecodable event is a dead letter and does not move the watermark; filtered and duplicate
// events move it; late events neither seed nor hit dedupe state. When the key or the time is a
// derived field, derive runs before the partition check (the event has no key or time without
// it); an error there is a dead letter that does not move the watermark.

public final class RecordProcessor: PartitionProcessing {
    /// What the source delivers: records in the job's format, or row images (outbox, CDC):
    /// headerless CSV of the schema's fields in PostgreSQL's text output.
    public enum Input: Sendable, Equatable { case job, rowImages }

    public let partition: Int
    public let pipeline: Pipeline
    private let decoder: RecordDecoder
    private let splitsCSV: Bool
    private let hasHeader: Bool
    /// The header's mapping of fields to columns, once read (CSV with `header: true`).
    private var headerColumns: [Int?]?
    /// Why the header could not be read: every record of the partition is then a dead letter.
    private var headerFailure: String?
    /// The start of a CSV record whose quoted field continues in the next block.
    private var pending: [UInt8] = []

    private let derived: [(name: String, expression: TypedExpression)]
    private let deriveFirst: Bool
    private let filter: TypedExpression?
    private let keyIndices: [Int]
    private let keyNames: [String]
    private let timeIndex: Int
    private let partitioner: KeyPartitioner?
    private let dedupe: (index: Int, within: Int64)?
    /// Dedupe: the event time of the first kept event of the current span of each value.
    private var firstSeen: [Value: Int64] = [:]
    private var nextEviction = Int64.min
    private let plans: [RecordAggregatePlan]
    private let windows: any RecordWindowing
    private let delay: Int64
    private let fieldCount: Int

    public private(set) var maxEventTime = Int64.min
    /// W: Int64.min before the first event, Int64.max once the input has ended.
    public private(set) var watermark = Int64.min
    /// Records consumed: the offset of the next record.
    public private(set) var offset: Int64 = 0
    /// Events decoded (dead letters of decoding and of the partition check excluded).
    public private(set) var eventsIn: Int64 = 0
    /// Events the filter dropped.
    public private(set) var eventsFiltered: Int64 = 0
    public private(set) var output: PartitionOutput

    /// `partitions`: how many partitions the input has (for the partition check).
    public init(partition: Int, partitions: Int, pipeline: Pipeline, input: Input = .job) {
        self.partition = partition
        self.pipeline = pipeline
        switch input {
        case .job:
            decoder = RecordDecoder(schema: pipeline.schema, format: pipeline.format)
        case .rowImages:
            decoder = RecordDecoder(schema: pipeline.schema, format: .plainCSV, mode: .postgres)
        }
        if case .csv(let header, _) = decoder.format {
            splitsCSV = true
            hasHeader = header
        } else {
            splitsCSV = false
            hasHeader = false
        }
        let (fields, derived) = pipeline.compiledDerive()
        self.derived = derived
        filter = pipeline.filter.map { text in
            guard let parsed = try? Expression.parse(text), let typed = try? TypedExpression(parsed, fields: fields) else {
                preconditionFailure("the filter was validated when the job loaded")
            }
            return typed
        }
        func index(_ name: String) -> Int {
            guard let i = fields.firstIndex(where: { $0.name == name }) else { preconditionFailure("field '\(name)' was validated when the job loaded") }
            return i
        }
        keyIndices = pipeline.keyFields.map(index)
        keyNames = pipeline.keyFields
        timeIndex = index(pipeline.timeField)
        let schemaCount = pipeline.schema.fields.count
        deriveFirst = keyIndices.contains { $0 >= schemaCount } || timeIndex >= schemaCount
        partitioner = pipeline.partitionCheck ? KeyPartitioner(pipeline.partitioner, partitions: max(1, partitions)) : nil
        dedupe = pipeline.dedupe.map { (index($0.field), $0.withinMs) }
        plans = RecordAggregatePlan.plans(for: pipeline, fields: fields)
        fieldCount = fields.count
        delay = pipeline.watermark.maxOutOfOrdernessMs
        switch pipeline.window {
        case .tumbling(let size): windows = AlignedRecordWindows(size: size, slide: size, plans: plans)
        case .sliding(let size, let slide): windows = AlignedRecordWindows(size: size, slide: slide, plans: plans)
        case .session(let gap): windows = SessionRecordWindows(gap: gap, plans: plans)
        }
        output = PartitionOutput(width: 1)
    }

    public var openWindows: Int { windows.openWindows }
    public var dedupeEntries: Int { firstSeen.count }

    /// Processes whole lines (each ending with `\n`, the last perhaps not at the end of the input).
    /// A CSV record whose quotes span the end of the block waits for the next one. Returns the
    /// records consumed.
    @discardableResult
    public func process(_ text: UnsafeRawBufferPointer) -> Int {
        guard !text.isEmpty else { return 0 }
        if pending.isEmpty { return processRecords(text) }
        let joined = pending + Array(text)
        pending = []
        return joined.withUnsafeBytes { processRecords($0) }
    }

    private func processRecords(_ text: UnsafeRawBufferPointer) -> Int {
        guard let base = text.baseAddress else { return 0 }
        let n = text.count
        var start = 0
        var records = 0
        while start < n {
            var end: Int
            if splitsCSV {
                let found = CSVRecords.recordEnd(base, from: start, count: n)
                guard found.complete || found.end < n else {
                    pending = Array(UnsafeRawBufferPointer(rebasing: text[start..<n]))
                    break
                }
                end = found.end
            } else {
                end = start
                while end < n, base.load(fromByteOffset: end, as: UInt8.self) != 10 { end += 1 }
            }
            var contentEnd = end
            if contentEnd > start, base.load(fromByteOffset: contentEnd - 1, as: UInt8.self) == 13 { contentEnd -= 1 }
            if record(UnsafeRawBufferPointer(rebasing: text[start..<contentEnd])) { records += 1 }
            start = end + 1
        }
        if watermark >= windows.nextFireTime { fire() }
        return records
    }

    /// One record without its line end; false for a CSV header (which takes no offset).
    private func record(_ bytes: UnsafeRawBufferPointer) -> Bool {
        if hasHeader, headerColumns == nil, headerFailure == nil {
            switch decoder.columns(ofHeader: bytes) {
            case .success(let columns): headerColumns = columns
            case .failure(let f): headerFailure = f.reason
            }
            return false
        }
        let at = offset
        offset += 1
        if let headerFailure { deadLetter(at, headerFailure, bytes); return true }
        if bytes.isEmpty { deadLetter(at, "empty record", bytes); return true }
        var values: [Value]
        switch decoder.decode(bytes, columns: headerColumns) {
        case .failure(let f): deadLetter(at, f.reason, bytes); return true
        case .success(let v): values = v
        }
        if deriveFirst, let failure = derive(&values) { deadLetter(at, failure, bytes); return true }

        var keyParts: [Value] = []
        keyParts.reserveCapacity(keyIndices.count)
        for (k, i) in keyIndices.enumerated() {
            if values[i].isNull { deadLetter(at, "key field '\(keyNames[k])' is null", bytes); return true }
            keyParts.append(values[i])
        }
        if let partitioner, let owner = partitioner.partition(of: keyParts), owner != partition {
            let key = keyParts.map(\.description).joined(separator: ", ")
            deadLetter(at, "key \(key) belongs to partition \(owner), read in \(partition)", bytes)
            return true
        }
        let time: Int64
        switch values[timeIndex] {
        case .int64(let t), .timestamp(let t): time = t
        default: deadLetter(at, "time field '\(pipeline.timeField)' is null", bytes); return true
        }
        guard time >= -Timestamps.limit, time <= Timestamps.limit else {
            deadLetter(at, "time field '\(pipeline.timeField)': \(time) is outside ±2^62 ms", bytes)
            return true
        }

        eventsIn += 1
        let before = watermark
        if time > maxEventTime {
            maxEventTime = time
            watermark = time - delay
        }
        if !deriveFirst, let failure = derive(&values) { deadLetter(at, failure, bytes); return true }
        if let filter {
            switch filter.evaluate(values) {
            case .failure(let e): deadLetter(at, "filter: \(e.message)", bytes); return true
            case .success(.bool(true)): break
            case .success: eventsFiltered += 1; return true
            }
        }
        let key = RecordKey(parts: keyParts)
        if windows.isLate(key: key, time: time, watermark: before) {
            output.late.append(RejectedLine(offset: at, reason: "late", line: String(decoding: bytes, as: UTF8.self)))
            return true
        }
        var spanBefore: (value: Value, first: Int64?)?
        if let dedupe, !values[dedupe.index].isNull {
            let value = values[dedupe.index]
            let first = firstSeen[value]
            if let first, (Int128(time) - Int128(first)).magnitude <= UInt128(dedupe.within) {
                output.duplicates.append(DuplicateEvent(offset: at, value: value))
                return true
            }
            firstSeen[value] = time
            spanBefore = (value, first)
        }
        if let overflow = windows.add(key: key, time: time, offset: at, values: values, watermark: before) {
            // A dead letter is not a kept event: it starts no dedupe span.
            if let spanBefore { firstSeen[spanBefore.value] = spanBefore.first }
            deadLetter(at, "overflow: \(plans[overflow.aggregate].column) of window \(overflow.start)", bytes)
        }
        return true
    }

    /// Appends the derived fields to `values`; the reason when one fails to evaluate.
    private func derive(_ values: inout [Value]) -> String? {
        values.reserveCapacity(fieldCount)
        for d in derived {
            switch d.expression.evaluate(values) {
            case .success(let v): values.append(v)
            case .failure(let e): return "derive '\(d.name)': \(e.message)"
            }
        }
        return nil
    }

    private func deadLetter(_ offset: Int64, _ reason: String, _ bytes: UnsafeRawBufferPointer) {
        output.deadLetters.append(RejectedLine(offset: offset, reason: reason, line: String(decoding: bytes, as: UTF8.self)))
    }

    /// Fires what the watermark closed, and forgets dedupe state no event that is not late could
    /// still match (at most once per second of event time: it scans the whole state).
    private func fire() {
        windows.fire(watermark: watermark, into: &output.records)
        guard let dedupe, watermark != Int64.max, watermark >= nextEviction else { return }
        let earliest = windows.earliestLiveTime(watermark: watermark)
        firstSeen = firstSeen.filter { Int128($0.value) + Int128(dedupe.within) >= earliest }
        nextEviction = watermark &+ max(1_000, dedupe.within / 2)
    }

    /// The input has ended: an unfinished quoted record is a dead letter, W becomes +infinity and
    /// every open window fires.
    public func finish() {
        if !pending.isEmpty {
            let at = offset
            offset += 1
            let bytes = pending
            pending = []
            bytes.withUnsafeBytes { deadLetter(at, "a quoted field is not closed before the end of the input", $0) }
        }
        watermark = Int64.max
        windows.fire(watermark: watermark, into: &output.records)
        firstSeen = [:]
    }

    public func takeOutput() -> PartitionOutput {
        let taken = output
        output = PartitionOutput(width: 1)
        return taken
    }

    // MARK: snapshots

    private static let stateVersion: UInt8 = 1

    public func snapshot() throws -> [UInt8] {
        var writer = BinaryWriter(capacity: 256 + windows.openWindows * 64 + firstSeen.count * 24)
        writer.write(RecordProcessor.stateVersion)
        writer.writeVarInt(offset)
        writer.writeVarInt(maxEventTime)
        writer.writeVarInt(watermark)
        writer.writeVarInt(eventsIn)
        writer.writeVarInt(eventsFiltered)
        writer.write(bytes: pending)
        switch (headerColumns, headerFailure) {
        case (let columns?, _):
            writer.write(UInt8(1))
            writer.writeVarUInt(UInt64(columns.count))
            for c in columns { writer.writeVarInt(c.map(Int64.init) ?? -1) }
        case (nil, let failure?):
            writer.write(UInt8(2))
            writer.write(bytes: Array(failure.utf8))
        case (nil, nil):
            writer.write(UInt8(0))
        }
        writer.writeVarUInt(UInt64(firstSeen.count))
        for (value, time) in firstSeen {
            RecordStateCodec.write(value, to: &writer)
            writer.writeVarInt(time)
        }
        writer.writeVarInt(nextEviction)
        windows.encode(into: &writer)
        return try SnapshotEnvelope.seal(writer.bytes)
    }

    public func restore(_ sealed: [UInt8]) throws {
        var reader = BinaryReader(try SnapshotEnvelope.open(sealed))
        let version = try reader.readUInt8()
        guard version == RecordProcessor.stateVersion else { throw CodecError.unsupportedVersion(UInt16(version)) }
        offset = try reader.readVarInt()
        maxEventTime = try reader.readVarInt()
        watermark = try reader.readVarInt()
        eventsIn = try reader.readVarInt()
        eventsFiltered = try reader.readVarInt()
        pending = try reader.readBytes()
        headerColumns = nil
        headerFailure = nil
        switch try reader.readUInt8() {
        case 0: break
        case 1:
            let count = try reader.readVarUInt()
            guard count == UInt64(pipeline.schema.fields.count) else { throw CodecError.corrupt("header mapping of \(count) fields") }
            headerColumns = try (0..<count).map { _ in
                let c = try reader.readVarInt()
                return c < 0 ? nil : Int(c)
            }
        case 2:
            headerFailure = String(decoding: try reader.readBytes(), as: UTF8.self)
        case let tag: throw CodecError.corrupt("unknown header tag \(tag)")
        }
        let entries = try reader.readVarUInt()
        guard entries <= UInt64(reader.remaining) else { throw CodecError.corrupt("dedupe entry count too large") }
        firstSeen = [:]
        for _ in 0..<entries {
            let value = try RecordStateCodec.readValue(from: &reader)
            firstSeen[value] = try reader.readVarInt()
        }
        nextEviction = try reader.readVarInt()
        try windows.decode(from: &reader)
        guard reader.isAtEnd else { throw CodecError.corrupt("trailing bytes after the window state") }
        output = PartitionOutput(width: 1)
    }
}
