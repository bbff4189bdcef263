import Foundation

/// The on-disk layout of a partitioned input: one CSV file per partition, `part-00000.csv` …
public enum PartitionFiles {
    public static func name(partition: Int) -> String {
        let digits = String(partition)
        return "part-" + String(repeating: "0", count: max(0, 5 - digits.count)) + digits + ".csv"
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
        let parts = entries.filter { $0.hasPrefix("part-") && $0.hasSuffix(".csv") }.sorted()
        guard !parts.isEmpty else {
            throw WorkloadError("no partition files (part-00000.csv …) in '\(directory)'; write some with `sluice gen`")
        }
        for (i, file) in parts.enumerated() where file != name(partition: i) {
            throw WorkloadError("partition files in '\(directory)' are not contiguous: expected \(name(partition: i)), found \(file)")
        }
        return parts.map { (directory as NSString).appendingPathComponent($0) }
    }

    /// Writes the generated workload as one file per partition, `progress` called with events written.
    public static func write(_ config: WorkloadConfig, to directory: String,
                             progress: (Int) -> Void = { _ in }) throws {
        if let problem = config.problem { throw WorkloadError(problem) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let generator = BidGenerator(config)
        var written = 0
        for partition in 0..<config.partitions {
            let path = (directory as NSString).appendingPathComponent(name(partition: partition))
            guard FileManager.default.createFile(atPath: path, contents: nil),
                  let handle = FileHandle(forWritingAtPath: path) else {
                throw WorkloadError("cannot create '\(path)'")
            }
            defer { try? handle.close() }
            var buffer: [UInt8] = []
            buffer.reserveCapacity(1 << 20)
            let count = generator.eventCount(partition: partition)
            for offset in 0..<count {
                generator.appendLine(partition: partition, offset: offset, to: &buffer)
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
