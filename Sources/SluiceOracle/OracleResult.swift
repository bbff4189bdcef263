// What the oracle computes for a job: the emitted rows, the late events and the dead letters.

/// One event's position: its partition and its 0-based line number in that partition.
public struct PartitionOffset: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var partition: Int
    public var offset: Int

    public init(partition: Int, offset: Int) {
        self.partition = partition
        self.offset = offset
    }

    public static func < (a: PartitionOffset, b: PartitionOffset) -> Bool {
        (a.partition, a.offset) < (b.partition, b.offset)
    }

    public var description: String { "\(partition),\(offset)" }
}

/// A line that does not parse, with why.
public struct DeadLetter: Hashable, Sendable {
    public var partition: Int
    public var offset: Int
    public var reason: String

    public init(partition: Int, offset: Int, reason: String) {
        self.partition = partition
        self.offset = offset
        self.reason = reason
    }

    public var position: PartitionOffset { PartitionOffset(partition: partition, offset: offset) }
}

public struct OracleResult: Sendable, Equatable {
    /// Output rows `window_start_ms,key,agg1,…`, sorted ascending (plain `String <`).
    public var rows: [String]
    /// Late events, sorted by partition then offset.
    public var late: [PartitionOffset]
    /// Malformed lines, sorted by partition then offset.
    public var deadLetters: [DeadLetter]

    public init(rows: [String] = [], late: [PartitionOffset] = [], deadLetters: [DeadLetter] = []) {
        self.rows = rows
        self.late = late
        self.deadLetters = deadLetters
    }

    /// Puts every list in its canonical order.
    mutating func sort() {
        rows.sort()
        late.sort()
        deadLetters.sort { $0.position < $1.position }
    }
}
