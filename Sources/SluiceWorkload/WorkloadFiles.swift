import Foundation

/// Which generated workload, and how its lines are written.
public enum Workload: String, Sendable, CaseIterable {
    /// Nexmark bids (docs/WORKLOAD.md), CSV or JSON lines.
    case bids
    /// Orders with string customer ids, decimals, timestamps and nested fields: JSON lines.
    case orders
}

public enum LineFormat: String, Sendable, CaseIterable {
    case csv, json
    var fileExtension: String { rawValue }
}

/// The on-disk layout of a partitioned input: one file per partition, `part-00000.csv` … (or
/// `.json` for JSON lines).
public enum PartitionFiles {
    public static func name(partition: Int, format: LineFormat = .csv) -> String {
        let digits = String(partition)
        return "part-" + String(repeating: "0", count: max(0, 5 - digits.count)) + digits + "." + format.fileExtension
    }

    /// The partition files of `directory` in partition order. Throws when the set is not exactly
    /// `part-00000.csv … part-(P-1).csv`.
    public static func list(directory: String) throws -> [String] {
        let entries: [String]
        do {
            entries = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw WorkloadError("cannot read input directory '\(directory)': \(error.localizedDescription)")
        }
        let csv = entries.filter { $0.hasPrefix("part-") && $0.hasSuffix(".csv") }.sorted()
        let json = entries.filter { $0.hasPrefix("part-") && $0.hasSuffix(".json") }.sorted()
        guard csv.isEmpty || json.isEmpty else {
            throw WorkloadError("'\(directory)' holds both part-*.csv and part-*.json files; keep one input per directory")
        }
        let parts = csv.isEmpty ? json : csv
        let format: LineFormat = csv.isEmpty ? .json : .csv
        guard !parts.isEmpty else {
            throw WorkloadError("no partition files (part-00000.csv … or part-00000.json …) in '\(directory)'; write some with `sluice gen`")
        }
        for (i, file) in parts.enumerated() where file != name(partition: i, format: format) {
            throw WorkloadError("partition files in '\(directory)' are not contiguous: expected \(name(partition: i)), found \(file)")
        }
        return parts.map { (directory as NSString).appendingPathComponent($0) }
    }

    /// Writes the generated workload as one file per partition, `progress` called with events written.
    public static func write(_ config: WorkloadConfig, workload: Workload = .bids, format: LineFormat = .csv,
                             to directory: String, progress: (Int) -> Void = { _ in }) throws {
        if let problem = config.problem { throw WorkloadError(problem) }
        if workload == .orders, format != .json {
            throw WorkloadError("the orders workload is JSON lines (nested customer fields); use --format json")
        }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let bids = BidGenerator(config)
        let orders = workload == .orders ? OrderGenerator(config) : nil
        var written = 0
        for partition in 0..<config.partitions {
            let path = (directory as NSString).appendingPathComponent(name(partition: partition, format: format))
            guard FileManager.default.createFile(atPath: path, contents: nil),
                  let handle = FileHandle(forWritingAtPath: path) else {
                throw WorkloadError("cannot create '\(path)'")
            }
            defer { try? handle.close() }
            var buffer: [UInt8] = []
            buffer.reserveCapacity(1 << 20)
            let count = bids.eventCount(partition: partition)
            for offset in 0..<count {
                if let orders {
                    orders.appendLine(partition: partition, offset: offset, to: &buffer)
                } else if format == .json {
                    bids.appendJSONLine(partition: partition, offset: offset, to: &buffer)
                } else {
                    bids.appendLine(partition: partition, offset: offset, to: &buffer)
                }
                if buffer.count >= 1 << 20 {
                    try handle.write(contentsOf: buffer)
                    buffer.removeAll(keepingCapacity: true)
                }
                written += 1
                if written % 1_000_000 == 0 { progress(written) }
            }
            try handle.write(contentsOf: buffer)
        }
        progress(written)
    }
}

public struct WorkloadError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
