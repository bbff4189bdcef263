import SluiceWorkload

/// The text of input lines at given positions, cut into lines exactly as the oracle cuts them:
/// `sluice verify` compares the sink's late events and dead letters with these by content.
public enum InputLines {
    /// The lines of every late event and dead letter of `oracle`.
    public static func rejected(by oracle: OracleResult, in input: WorkloadInput) throws -> [PartitionOffset: String] {
        try lines(of: input, at: oracle.late + oracle.deadLetters.map(\.position))
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
}
