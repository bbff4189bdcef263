import SluiceCore
import SluiceWorkload

/// The text of input lines at given positions, cut into lines exactly as the oracle cuts them:
/// `sluice verify` compares the sink's late events and dead letters with these by content.
/// For records jobs the "line" at an offset is the raw record (a quoted multi-line CSV record
/// whole, the CSV header skipped, a trailing `\r` removed).
public enum InputLines {
    /// The lines (records) of every late event and dead letter of `oracle`, cut as `pipeline`'s
    /// format cuts them: right for integer and records jobs alike.
    public static func rejected(by oracle: OracleResult, in input: WorkloadInput, pipeline: Pipeline) throws -> [PartitionOffset: String] {
        try lines(of: input, at: oracle.late + oracle.deadLetters.map(\.position), pipeline: pipeline)
    }

    public static func lines(of input: WorkloadInput, at positions: [PartitionOffset]) throws -> [PartitionOffset: String] {
        var wanted: [Int: Set<Int>] = [:]
        for position in positions { wanted[position.partition, default: []].insert(position.offset) }
        var found: [PartitionOffset: String] = [:]
        for (partition, offsets) in wanted {
            let text = try input.readPartition(partition)
            text.withUnsafeBufferPointer { text in
                Lines.forEach(in: text) { offset, range in
                    if offsets.contains(offset) {
                        found[PartitionOffset(partition: partition, offset: offset)] = String(decoding: text[range], as: UTF8.self)
                    }
                }
            }
        }
        return found
    }

    /// As `lines(of:at:)`, with records cut as `pipeline`'s format cuts them (integer jobs: lines).
    public static func lines(of input: WorkloadInput, at positions: [PartitionOffset], pipeline: Pipeline) throws -> [PartitionOffset: String] {
        if pipeline.isIntegerCSV { return try lines(of: input, at: positions) }
        var wanted: [Int: Set<Int>] = [:]
        for position in positions { wanted[position.partition, default: []].insert(position.offset) }
        var found: [PartitionOffset: String] = [:]
        for (partition, offsets) in wanted {
            let text = try input.readPartition(partition)
            found.merge(records(of: text, format: pipeline.format, partition: partition, at: offsets)) { a, _ in a }
        }
        return found
    }

    /// The records of one partition's text at `offsets`.
    public static func records(of text: [UInt8], format: RecordFormat, partition: Int, at offsets: Set<Int>) -> [PartitionOffset: String] {
        var found: [PartitionOffset: String] = [:]
        for (offset, record) in RecordSplitter.split(text, format: format).records.enumerated() where offsets.contains(offset) {
            found[PartitionOffset(partition: partition, offset: offset)] = String(decoding: record.bytes, as: UTF8.self)
        }
        return found
    }
}
