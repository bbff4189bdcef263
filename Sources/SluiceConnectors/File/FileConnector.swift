// File/: the `file:DIR` connector. As a source, one file per partition (`PartitionFiles`: CSV or
// JSON lines) read in large blocks (FileSource.swift); a bare directory is a file input too. As a
// sink, CSV files per partition and commit, staged, published and recovered (FileSink.swift), in a
// directory with one owner (FileSinkOwnership.swift), read back from the published files. Its
// checkpoint store defaults to `DIR/_sluice_state.db`.

import Foundation
import Logging
import SluiceCore
import SluiceJob
import SluiceStorage
import SluiceWorkload

struct FileConnector: SourceConnector, SinkConnector {
    var usage: String { "file:DIR" }

    func claims(_ uri: String) -> Bool { uri.hasPrefix("file:") }

    /// `file:DIR`, or for an input a bare `DIR`.
    static func directory(_ uri: String, sink: Bool) throws -> String {
        let directory = uri.hasPrefix("file:") ? String(uri.dropFirst(5)) : uri
        guard !directory.isEmpty else {
            if sink { throw SinkError("sink '\(uri)': no directory; write file:DIR") }
            throw SourceError("input '\(uri)': no directory given; write file:DIR")
        }
        return directory
    }

    // MARK: Source

    func openSource(uri: String, options: SourceOptions) throws -> any SourcePartitions {
        FilePartitions(files: try PartitionFiles.list(directory: FileConnector.directory(uri, sink: false)))
    }

    func inputIdentity(_ uri: String) -> String {
        guard let directory = try? FileConnector.directory(uri, sink: false) else { return uri }
        return "file:" + StoreBinding.absolute(directory)
    }

    // MARK: Sink

    func openSink(uri: String, job: JobSpec, logger: Logger) throws -> any Sink {
        let directory = try FileConnector.directory(uri, sink: true)
        try FileSink.prepare(directory: directory)
        return FileSink(directory: directory, pipeline: job.pipeline)
    }

    func validateSink(uri: String, job: JobSpec) throws {
        _ = try FileConnector.directory(uri, sink: true)
    }

    func sinkIdentity(_ uri: String) -> String {
        "file:" + StoreBinding.absolute(String(uri.dropFirst(5)))
    }

    func readBack(uri: String, job: JobSpec, statePath: String?) throws -> SinkContents {
        try FileSink.readBack(directory: String(uri.dropFirst(5)))
    }
}

/// The partition files of a directory, one per partition.
struct FilePartitions: SourcePartitions {
    let files: [String]
    var partitions: Int { files.count }

    func open(partition: Int, position: Int64, tuning: SourceTuning, logger: Logger) throws -> any PartitionSource {
        try FileSource(path: files[partition], position: position, blockSize: tuning.fileBlockBytes)
    }
}

extension FileSink {
    /// Every published file of every partition, for `sluice verify`.
    static func readBack(directory: String) throws -> SinkContents {
        var contents = SinkContents()
        let fm = FileManager.default
        guard let parts = try? fm.contentsOfDirectory(atPath: directory) else {
            throw SinkError("cannot read sink directory '\(directory)'")
        }
        for part in parts.sorted() where part.hasPrefix("part-") {
            let dir = (directory as NSString).appendingPathComponent(part)
            for name in ((try? fm.contentsOfDirectory(atPath: dir)) ?? []).sorted() where name.hasSuffix(".csv") {
                guard let data = fm.contents(atPath: (dir as NSString).appendingPathComponent(name)) else { continue }
                // Records, not lines: a quoted field (a records job's string, a dead letter's
                // multi-line CSV record) may hold a line end.
                let records = csvRecords([UInt8](data)).dropFirst()  // the header
                func unreadable(_ record: [UInt8]) -> SinkError {
                    SinkError("unreadable line in '\(dir)/\(name)': \(String(decoding: record.prefix(80), as: UTF8.self))")
                }
                if name.hasPrefix("results-") {
                    contents.rows.append(contentsOf: records.map { String(decoding: $0, as: UTF8.self) })
                } else if name.hasPrefix("duplicates-") {
                    for record in records {
                        guard let entry = DuplicateRows.parseCSV(record) else { throw unreadable(record) }
                        contents.duplicates.append(entry)
                    }
                } else if name.hasPrefix("late-") || name.hasPrefix("dead-") {
                    for record in records {
                        guard let entry = RejectedCSV.parse(Substring(String(decoding: record, as: UTF8.self))) else { throw unreadable(record) }
                        if name.hasPrefix("late-") { contents.late.append(entry) } else { contents.deadLetters.append(entry) }
                    }
                }
            }
        }
        return contents
    }

    /// The records of CSV text (RFC 4180: a line end inside quotes does not end one), without their
    /// line ends.
    static func csvRecords(_ bytes: [UInt8]) -> [[UInt8]] {
        var records: [[UInt8]] = []
        bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            var start = 0
            while start < raw.count {
                let (end, _) = CSVRecords.recordEnd(base, from: start, count: raw.count)
                records.append(Array(raw[start..<end]))
                start = end + 1
            }
        }
        return records
    }
}
