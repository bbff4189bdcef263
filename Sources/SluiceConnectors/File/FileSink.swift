import Foundation
import SluiceCore
import SluiceStorage

/// Results as CSV files, one set per partition and commit:
///
///     DIR/part-00003/results-000000000042.csv   rows of checkpoint 42 (with a header line)
///     DIR/part-00003/late-000000000042.csv      late events:  partition,offset,reason,line
///     DIR/part-00003/dead-000000000042.csv      dead letters: partition,offset,reason,line
///     DIR/part-00003/duplicates-000000000042.csv  events dedupe dropped: partition,offset,value
///
/// A records job's results are RFC 4180 CSV in `RecordText` form (`RecordText.row`: null an empty
/// field, `""` the empty string); the integer path's are as they always were.
///
/// Files are written and fsynced under `.staging/` (named with the writer's epoch, so a zombie never
/// overwrites the owner's), listed in the checkpoint, and renamed into place after the commit. A
/// crash between commit and rename is finished by `recover`, which also deletes this sink's files
/// that no commit covers: only its exact names (see `seq(of:)`, `isStagedName`), and only in a
/// directory it owns (`_sluice_output`, see FileSinkOwnership.swift). The checkpoint store defaults
/// to `DIR/_sluice_state.db`.
public struct FileSink: Sink {
    public let directory: String
    private let header: String
    /// The integer path's rows (nil for a records job, whose rows are typed `records`).
    private let formatter: RowFormatter?

    /// (A `changes` job's results files hold change events, with ChangeTable's columns.)
    public init(directory: String, pipeline: Pipeline) {
        self.directory = directory
        header = pipeline.outputColumns.joined(separator: ",") + "\n"
        formatter = pipeline.isIntegerCSV ? RowFormatter(layout: AggregateLayout(pipeline: pipeline)) : nil
    }

    public var defaultStatePath: String { (directory as NSString).appendingPathComponent("_sluice_state.db") }

    public static func partitionDirectory(_ directory: String, partition: Int) -> String {
        let digits = String(partition)
        return (directory as NSString).appendingPathComponent("part-" + String(repeating: "0", count: max(0, 5 - digits.count)) + digits)
    }

    static func fileName(_ kind: String, seq: Int64) -> String {
        let digits = String(seq)
        return "\(kind)-" + String(repeating: "0", count: max(0, 12 - digits.count)) + digits + ".csv"
    }

    /// The seq of a file this sink publishes, e.g. 42 for `results-000000000042.csv`; nil for any
    /// other name (exactly `results|late|dead|duplicates`, a dash, 12 digits, `.csv`).
    static func seq(of name: String) -> Int64? {
        let bytes = Array(name.utf8)
        guard let dash = bytes.firstIndex(of: UInt8(ascii: "-")),
              publishedKinds.contains(String(decoding: bytes[..<dash], as: UTF8.self)),
              bytes.count == dash + 1 + 12 + 4, name.hasSuffix(".csv") else { return nil }
        let digits = bytes[(dash + 1)..<(dash + 13)]
        guard digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        return Int64(String(decoding: digits, as: UTF8.self))
    }

    static let publishedKinds: Set<String> = ["results", "late", "dead", "duplicates"]

    /// True for `e<epoch>-<published name>`, the only names this sink stages.
    static func isStagedName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard bytes.first == UInt8(ascii: "e"), let dash = bytes.firstIndex(of: UInt8(ascii: "-")), dash > 1,
              bytes[1..<dash].allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return false }
        return seq(of: String(decoding: bytes[(dash + 1)...], as: UTF8.self)) != nil
    }

    private func staging(_ partition: Int) -> String {
        (FileSink.partitionDirectory(directory, partition: partition) as NSString).appendingPathComponent(".staging")
    }

    private func stagedName(_ name: String, epoch: Int64) -> String { "e\(epoch)-\(name)" }

    public func createTables(in db: SQLiteDatabase) throws {}
    public func write(_ output: PartitionOutput, partition: Int, seq: Int64, in db: SQLiteDatabase) throws {}
    public func discard(partition: Int, after seq: Int64, in db: SQLiteDatabase) throws {}  // `recover` deletes the files
    // With a PostgreSQL checkpoint store: the same (the files are listed in the checkpoint).
    public func createTables(in pg: PostgresConnection) throws {}
    public func write(_ output: PartitionOutput, partition: Int, seq: Int64, in pg: PostgresConnection) throws {}
    public func discard(partition: Int, after seq: Int64, in pg: PostgresConnection) throws {}

    public func stage(_ output: PartitionOutput, partition: Int, epoch: Int64, seq: Int64) throws -> [String] {
        let dir = staging(partition)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var names: [String] = []
        func put(_ kind: String, _ bytes: [UInt8]) throws {
            let name = FileSink.fileName(kind, seq: seq)
            try writeDurably(bytes, to: (dir as NSString).appendingPathComponent(stagedName(name, epoch: epoch)))
            names.append(name)
        }
        if !output.changes.isEmpty { try put("results", ChangeTable.csv(output.changes)) }
        if let formatter, !output.rows.isEmpty {
            var bytes = Array(header.utf8)
            bytes.reserveCapacity(output.rows.count * 32)
            for row in 0..<output.rows.count {
                formatter.append(output.rows, row: row, to: &bytes)
                bytes.append(10)
            }
            try put("results", bytes)
        }
        if !output.records.isEmpty {
            var bytes = Array(header.utf8)
            for row in output.records {
                bytes.append(contentsOf: RecordText.row(row).utf8)
                bytes.append(10)
            }
            try put("results", bytes)
        }
        if !output.duplicates.isEmpty {
            var bytes = Array(DuplicateRows.csvHeader.utf8)
            for duplicate in output.duplicates { DuplicateRows.appendCSV(duplicate, partition: partition, to: &bytes) }
            try put("duplicates", bytes)
        }
        for (kind, lines) in [("late", output.late), ("dead", output.deadLetters)] where !lines.isEmpty {
            var bytes = Array(RejectedCSV.header.utf8)
            for line in lines { RejectedCSV.append(line, partition: partition, to: &bytes) }
            try put(kind, bytes)
        }
        return names
    }

    public func publish(files: [String], partition: Int, epoch: Int64) throws {
        guard !files.isEmpty else { return }
        let target = FileSink.partitionDirectory(directory, partition: partition)
        for name in files {
            let from = (staging(partition) as NSString).appendingPathComponent(stagedName(name, epoch: epoch))
            let to = (target as NSString).appendingPathComponent(name)
            if rename(from, to) != 0 && errno != ENOENT {  // ENOENT: already published
                throw SinkError("cannot publish '\(from)' as '\(to)': \(String(cString: strerror(errno)))")
            }
        }
        try syncDirectory(target)
    }

    public func recover(partition: Int, last: Checkpoint?) throws {
        let target = FileSink.partitionDirectory(directory, partition: partition)
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        if let last { try publish(files: last.sinkFiles, partition: partition, epoch: last.epoch) }
        let committed = last?.seq ?? 0
        for name in (try? FileManager.default.contentsOfDirectory(atPath: target)) ?? [] {
            if let seq = FileSink.seq(of: name), seq > committed {
                try FileManager.default.removeItem(atPath: (target as NSString).appendingPathComponent(name))
            }
        }
        let stage = staging(partition)
        for name in (try? FileManager.default.contentsOfDirectory(atPath: stage)) ?? [] where FileSink.isStagedName(name) {
            try FileManager.default.removeItem(atPath: (stage as NSString).appendingPathComponent(name))
        }
        try syncDirectory(target)
    }

    func writeDurably(_ bytes: [UInt8], to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SinkError("cannot create '\(path)': \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var written = 0
        try bytes.withUnsafeBytes { raw in
            while written < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + written, raw.count - written)  // non-empty here
                if n < 0 {
                    if errno == EINTR { continue }
                    throw SinkError("cannot write '\(path)': \(String(cString: strerror(errno)))")
                }
                written += n
            }
        }
        guard fsync(fd) == 0 else { throw SinkError("cannot fsync '\(path)': \(String(cString: strerror(errno)))") }
    }

    func syncDirectory(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        _ = fsync(fd)
    }
}
