// What the oracle computes for a job: the emitted rows, the late events and the dead letters;
// for records jobs also the typed rows (with the float tolerance basis), the events dedupe
// dropped, and the count of filtered events.

import SluiceCore

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

/// One fired window of a records job, as the oracle computed it.
public struct RecordOutput: Sendable, Equatable {
    public var row: RecordRow
    /// Per value of `row.values` (key parts, then aggregates): for a float64 aggregate column, the
    /// sum of the absolute values aggregated into it (`sluice verify` accepts a sink's value within
    /// 1e-9 × this); nil for every other column, which must match exactly.
    public var floatBasis: [Double?]

    public init(row: RecordRow, floatBasis: [Double?]) {
        self.row = row
        self.floatBasis = floatBasis
    }

    /// The row's canonical text (`RecordText.row`), as in `OracleResult.rows`.
    public var text: String { RecordText.row(row) }
}

/// An event that dedupe dropped: where it was read, and the dedupe field's value as text
/// (`RecordText.text`).
public struct OracleDuplicate: Hashable, Sendable {
    public var partition: Int
    public var offset: Int
    public var value: String

    public init(partition: Int, offset: Int, value: String) {
        self.partition = partition
        self.offset = offset
        self.value = value
    }
}

public struct OracleResult: Sendable, Equatable {
    /// Output rows `window_start_ms,key,agg1,…`, sorted ascending (plain `String <`). For records
    /// jobs, each is `RecordText.row` of a typed row (the text of `records`).
    public var rows: [String]
    /// Late events, sorted by partition then offset.
    public var late: [PartitionOffset]
    /// Malformed lines, sorted by partition then offset.
    public var deadLetters: [DeadLetter]
    /// Records jobs only: the typed rows, in the order of `rows` (sorted by their text).
    public var records: [RecordOutput]
    /// Records jobs only: the events dedupe dropped, sorted by partition then offset.
    public var duplicates: [OracleDuplicate]
    /// Records jobs only: events the filter dropped (false or null).
    public var filtered: Int
    /// Records jobs only: the number of key columns after `window_start_ms` (to pair rows by
    /// window and key); 1 for integer jobs.
    public var keyColumns: Int

    public init(rows: [String] = [], late: [PartitionOffset] = [], deadLetters: [DeadLetter] = [],
                records: [RecordOutput] = [], duplicates: [OracleDuplicate] = [], filtered: Int = 0, keyColumns: Int = 1) {
        self.rows = rows
        self.late = late
        self.deadLetters = deadLetters
        self.records = records
        self.duplicates = duplicates
        self.filtered = filtered
        self.keyColumns = keyColumns
    }

    /// Puts every list in its canonical order.
    mutating func sort() {
        if records.isEmpty {
            rows.sort()
        } else {
            let texts = records.map(\.text)
            let order = texts.indices.sorted { texts[$0] < texts[$1] }
            records = order.map { records[$0] }
            rows = order.map { texts[$0] }
        }
        late.sort()
        deadLetters.sort { $0.position < $1.position }
        duplicates.sort { ($0.partition, $0.offset) < ($1.partition, $1.offset) }
    }
}
