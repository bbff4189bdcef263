import SluiceJob
import SluiceStorage

/// Reads back what a sink committed, as text rows and rejected lines, for `sluice verify`. A
/// records job's rows are `RecordText.row` text, as the oracle renders them, from every sink.
public struct SinkContents: Sendable {
    public var rows: [String] = []
    public var late: [RejectedEntry] = []
    public var deadLetters: [RejectedEntry] = []
    /// Events dedupe dropped (records jobs).
    public var duplicates: [DuplicateEntry] = []

    public init(rows: [String] = [], late: [RejectedEntry] = [], deadLetters: [RejectedEntry] = [],
                duplicates: [DuplicateEntry] = []) {
        self.rows = rows
        self.late = late
        self.deadLetters = deadLetters
        self.duplicates = duplicates
    }
}

/// A late event or dead letter as a sink holds it: where it was read, and the line itself.
public struct RejectedEntry: Sendable, Equatable {
    public var partition: Int
    public var offset: Int
    public var line: String

    public init(partition: Int, offset: Int, line: String) {
        self.partition = partition
        self.offset = offset
        self.line = line
    }
}

/// An event dedupe dropped, as a sink holds it: where it was read, and the dedupe field's value in
/// `RecordText.text` form (nil for null).
public struct DuplicateEntry: Sendable, Equatable {
    public var partition: Int
    public var offset: Int
    public var value: String?

    public init(partition: Int, offset: Int, value: String?) {
        self.partition = partition
        self.offset = offset
        self.value = value
    }
}

public enum SinkReader {
    /// The sink's connector reads it (`SinkConnector.readBack`).
    /// `statePath`: the checkpoint store, for sinks that keep rejected events there (Kafka).
    public static func read(uri: String, job: JobSpec, statePath: String? = nil) throws -> SinkContents {
        guard job.kind == .windows else {
            throw SinkError("job '\(job.name)' is of kind changes: its sink holds change events, which have no oracle to verify against; query its table (\(job.table)) directly")
        }
        return try ConnectorRegistry.sink(uri).readBack(uri: uri, job: job, statePath: statePath)
    }
}
