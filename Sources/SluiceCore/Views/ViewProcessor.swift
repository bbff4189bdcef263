// The pipeline of one partition of a job of kind `view`: the latest row per key of a changelog.
// Per change line (`ViewChangeLine`), in order:
//
//   decode → partition check → derive → filter → the key's new state
//
// An upsert whose row decodes, derives and passes the filter sets the key's row; one that the
// filter rejects removes the key (a row that leaves the filter leaves the view); a delete removes
// it. A row that cannot be decoded or derived is a dead letter, and its key (when the key itself
// decodes) leaves the view too: the view never keeps a version the table no longer has. Within
// one commit only each key's last state is emitted (`takeOutput`), so a commit writes a key once.
// The processor keeps no rows: the view lives in the sink, and its state is only counters.

public final class ViewProcessor: PartitionProcessing {
    public let partition: Int
    public let pipeline: Pipeline
    /// The whole row image (an upsert's).
    private let rowDecoder: RecordDecoder
    /// The key's fields only (a delete's image: PostgreSQL sends the old row's replica identity).
    private let keyDecoder: RecordDecoder
    /// Where each key part is among the key decoder's values.
    private let keyFieldIndices: [Int]
    /// JSON records end at every line feed (CSV ones at a line feed outside quotes).
    private let jsonLines: Bool
    private let derived: [(name: String, expression: TypedExpression)]
    private let filter: TypedExpression?
    private let keyNames: [String]
    private let partitioner: KeyPartitioner?
    /// This commit's changes, and where each key's is.
    private var changes: [ViewChange] = []
    private var changeIndex: [[Value]: Int] = [:]
    private var output = PartitionOutput(width: 0)

    public private(set) var offset: Int64 = 0
    /// The latest commit time seen (ms), for freshness; Int64.min before the first change.
    public private(set) var watermark: Int64 = Int64.min
    /// Changes decoded (dead letters excluded).
    public private(set) var eventsIn: Int64 = 0
    /// Upserts the filter turned into removals.
    public private(set) var eventsFiltered: Int64 = 0

    /// `partitions`: how many partitions the input has (for the partition check). `input`: row
    /// images in PostgreSQL's text (CDC), or records in the job's format (a compacted Kafka topic).
    public init(partition: Int, partitions: Int, pipeline: Pipeline, input: RecordProcessor.Input = .rowImages) {
        self.partition = partition
        self.pipeline = pipeline
        // A malformed value outside the key must not hide the key whose row it spoils (that key
        // leaves the view): the key decoder reads only the key. CSV is positional, so there the
        // other columns are read as any text, or none.
        var keySchema = pipeline.schema
        switch input {
        case .rowImages:
            rowDecoder = RecordDecoder(schema: pipeline.schema, format: .plainCSV, mode: .postgres)
            for i in keySchema.fields.indices where !pipeline.keyFields.contains(keySchema.fields[i].name) {
                keySchema.fields[i] = Field(name: keySchema.fields[i].name, type: .string, nullable: true)
            }
            keyDecoder = RecordDecoder(schema: keySchema, format: .plainCSV, mode: .postgres)
            jsonLines = false
        case .job:
            rowDecoder = RecordDecoder(schema: pipeline.schema, format: pipeline.format)
            if pipeline.format == .json {
                keySchema.fields = pipeline.keyFields.compactMap { name in pipeline.schema.fields.first { $0.name == name } }
            } else {
                for i in keySchema.fields.indices where !pipeline.keyFields.contains(keySchema.fields[i].name) {
                    keySchema.fields[i] = Field(name: keySchema.fields[i].name, type: .string, nullable: true)
                }
            }
            keyDecoder = RecordDecoder(schema: keySchema, format: pipeline.format)
            jsonLines = pipeline.format == .json
        }
        keyFieldIndices = pipeline.keyFields.map { name in keySchema.fields.firstIndex { $0.name == name } ?? 0 }
        let (fields, derived) = pipeline.compiledDerive()
        self.derived = derived
        filter = pipeline.filter.map { text in
            guard let parsed = try? Expression.parse(text), let typed = try? TypedExpression(parsed, fields: fields) else {
                preconditionFailure("the filter was validated when the job loaded")
            }
            return typed
        }
        keyNames = pipeline.keyFields
        partitioner = pipeline.partitionCheck ? KeyPartitioner(pipeline.partitioner, partitions: max(1, partitions)) : nil
    }

    @discardableResult
    public func process(_ text: UnsafeRawBufferPointer) -> Int {
        guard let base = text.baseAddress else { return 0 }
        var start = 0
        var lines = 0
        while start < text.count {
            // A quoted field of a CSV image may hold a line feed: the record ends at an unquoted one.
            var end = start
            if jsonLines {
                while end < text.count, text[end] != 10 { end += 1 }
            } else {
                end = CSVRecords.recordEnd(base, from: start, count: text.count).end
            }
            var contentEnd = end
            if contentEnd > start, text[contentEnd - 1] == 13 { contentEnd -= 1 }
            change(UnsafeRawBufferPointer(rebasing: text[start..<contentEnd]))
            lines += 1
            start = end + 1
        }
        return lines
    }

    private func change(_ line: UnsafeRawBufferPointer) {
        let at = offset
        offset += 1
        guard let header = ViewChangeLine.header(line) else {
            // A source that cannot tell the operation says why after a `?` and a tab.
            if line.count > 2, line[0] == 63, line[1] == 9, let end = line[2...].firstIndex(of: 9) {
                deadLetter(at, String(decoding: UnsafeRawBufferPointer(rebasing: line[2..<end]), as: UTF8.self), line)
            } else {
                deadLetter(at, "not a view change line (expected U or D, a tab, the commit time, a tab, the row image)", line)
            }
            return
        }
        let image = UnsafeRawBufferPointer(rebasing: line[header.imageStart...])
        // The key first: every outcome but a misrouted or keyless line changes this key's state.
        let key: [Value]
        switch keyDecoder.decode(image) {
        case .failure(let f):
            deadLetter(at, f.reason, line)
            return
        case .success(let values):
            var parts: [Value] = []
            for (k, i) in keyFieldIndices.enumerated() {
                if values[i].isNull { deadLetter(at, "key field '\(keyNames[k])' is null", line); return }
                parts.append(values[i])
            }
            key = parts
        }
        if let partitioner, let owner = partitioner.partition(of: key), owner != partition {
            deadLetter(at, "key \(key.map(\.description).joined(separator: ", ")) belongs to partition \(owner), read in \(partition)", line)
            return
        }
        if header.timeMs > watermark { watermark = header.timeMs }
        guard header.upsert else {
            eventsIn += 1
            set(key, nil)
            return
        }
        var values: [Value]
        switch rowDecoder.decode(image) {
        case .failure(let f):
            deadLetter(at, f.reason, line)
            set(key, nil)
            return
        case .success(let v): values = v
        }
        for d in derived {
            switch d.expression.evaluate(values) {
            case .success(let v): values.append(v)
            case .failure(let e):
                deadLetter(at, "derive '\(d.name)': \(e.message)", line)
                set(key, nil)
                return
            }
        }
        eventsIn += 1
        if let filter {
            switch filter.evaluate(values) {
            case .failure(let e):
                deadLetter(at, "filter: \(e.message)", line)
                set(key, nil)
                return
            case .success(.bool(true)): break
            case .success:
                eventsFiltered += 1
                set(key, nil)
                return
            }
        }
        set(key, values)
    }

    private func set(_ key: [Value], _ row: [Value]?) {
        if let i = changeIndex[key] {
            changes[i].row = row
        } else {
            changeIndex[key] = changes.count
            changes.append(ViewChange(key: key, row: row))
        }
    }

    private func deadLetter(_ offset: Int64, _ reason: String, _ bytes: UnsafeRawBufferPointer) {
        output.deadLetters.append(RejectedLine(offset: offset, reason: reason, line: String(decoding: bytes, as: UTF8.self)))
    }

    public func finish() {}

    public func takeOutput() -> PartitionOutput {
        var taken = output
        taken.viewChanges = changes
        output = PartitionOutput(width: 0)
        changes = []
        changeIndex = [:]
        return taken
    }

    private static let stateVersion: UInt8 = 1

    public func snapshot() throws -> [UInt8] {
        var writer = BinaryWriter(capacity: 32)
        writer.write(ViewProcessor.stateVersion)
        writer.writeVarInt(offset)
        writer.writeVarInt(watermark)
        writer.writeVarInt(eventsIn)
        writer.writeVarInt(eventsFiltered)
        return try SnapshotEnvelope.seal(writer.bytes)
    }

    public func restore(_ sealed: [UInt8]) throws {
        var reader = BinaryReader(try SnapshotEnvelope.open(sealed))
        let version = try reader.readUInt8()
        guard version == ViewProcessor.stateVersion else { throw CodecError.unsupportedVersion(UInt16(version)) }
        offset = try reader.readVarInt()
        watermark = try reader.readVarInt()
        eventsIn = try reader.readVarInt()
        eventsFiltered = try reader.readVarInt()
        guard reader.isAtEnd else { throw CodecError.corrupt("trailing bytes after the view state") }
        output = PartitionOutput(width: 0)
        changes = []
        changeIndex = [:]
    }
}
