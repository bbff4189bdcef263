/// The partition pipeline of a `changes` job: every change line becomes one output row, in order;
/// a line that is not a change line is a dead letter. Its state is only its counters.
public final class ChangeLogProcessor: PartitionProcessing {
    public let partition: Int
    public private(set) var offset: Int64 = 0
    /// The latest commit time seen (ms), for freshness; Int64.min before the first change.
    public private(set) var watermark: Int64 = Int64.min
    public private(set) var eventsIn: Int64 = 0
    private var output = PartitionOutput(width: 0)

    public init(partition: Int) { self.partition = partition }

    @discardableResult
    public func process(_ text: UnsafeRawBufferPointer) -> Int {
        var start = 0
        var lines = 0
        while start < text.count {
            var end = start
            while end < text.count, text[end] != 10 { end += 1 }
            let line = UnsafeRawBufferPointer(rebasing: text[start..<end])
            switch ChangeLine.parse(line) {
            case .success(let row):
                output.changes.append(row)
                eventsIn += 1
                if row.commitTimeMs > watermark { watermark = row.commitTimeMs }
            case .failure(let error):
                output.deadLetters.append(RejectedLine(offset: offset, reason: error.description,
                                                       line: String(decoding: line, as: UTF8.self)))
            }
            offset += 1
            lines += 1
            start = end + 1
        }
        return lines
    }

    public func finish() {}

    public func takeOutput() -> PartitionOutput {
        let taken = output
        output = PartitionOutput(width: 0)
        output.changes.reserveCapacity(taken.changes.count)
        return taken
    }

    private static let stateVersion: UInt8 = 1

    public func snapshot() throws -> [UInt8] {
        var writer = BinaryWriter(capacity: 32)
        writer.write(ChangeLogProcessor.stateVersion)
        writer.writeVarInt(offset)
        writer.writeVarInt(watermark)
        writer.writeVarInt(eventsIn)
        return try SnapshotEnvelope.seal(writer.bytes)
    }

    public func restore(_ sealed: [UInt8]) throws {
        var reader = BinaryReader(try SnapshotEnvelope.open(sealed))
        let version = try reader.readUInt8()
        guard version == ChangeLogProcessor.stateVersion else { throw CodecError.unsupportedVersion(UInt16(version)) }
        offset = try reader.readVarInt()
        watermark = try reader.readVarInt()
        eventsIn = try reader.readVarInt()
        guard reader.isAtEnd else { throw CodecError.corrupt("trailing bytes after the change log state") }
        output = PartitionOutput(width: 0)
    }
}
