import Foundation

/// An input addressed by URI: `file:DIR` (or a bare directory) with one CSV per partition, or
/// `gen:seed=42,events=1000000,partitions=8,keys=10000` for the seeded generator.
public enum WorkloadInput: Sendable, Equatable {
    case files(directory: String)
    case generator(WorkloadConfig)

    /// `gen:…` or `file:DIR` (a bare directory too), for the tools that read a bounded input whole
    /// (the oracle, `sluice verify`, the chaos checks). Sources and sinks are opened through the
    /// connector registry (SluiceConnectors), whose generator connector reads `gen:` with
    /// `WorkloadConfig.parse` too.
    public static func parse(_ uri: String) throws -> WorkloadInput {
        if uri.hasPrefix("gen:") { return .generator(try WorkloadConfig.parse(uri)) }
        let directory = uri.hasPrefix("file:") ? String(uri.dropFirst(5)) : uri
        guard !directory.isEmpty else { throw WorkloadError("input '\(uri)': no directory given") }
        return .files(directory: directory)
    }

    public func partitionCount() throws -> Int {
        switch self {
        case .files(let directory): return try PartitionFiles.list(directory: directory).count
        case .generator(let config): return config.partitions
        }
    }

    /// Every byte of one partition's text, for tools that read a whole partition (oracle, verify).
    public func readPartition(_ partition: Int) throws -> [UInt8] {
        switch self {
        case .files(let directory):
            let files = try PartitionFiles.list(directory: directory)
            guard files.indices.contains(partition) else {
                throw WorkloadError("input '\(directory)' has no partition \(partition)")
            }
            guard let data = FileManager.default.contents(atPath: files[partition]) else {
                throw WorkloadError("cannot read '\(files[partition])'")
            }
            return [UInt8](data)
        case .generator(let config):
            let generator = BidGenerator(config)
            var bytes: [UInt8] = []
            for offset in 0..<generator.eventCount(partition: partition) {
                generator.appendLine(partition: partition, offset: offset, to: &bytes)
            }
            return bytes
        }
    }
}

extension WorkloadConfig {
    /// `gen:seed=42,events=1000000,partitions=8,keys=10000`: the generator's parameters (any left
    /// out keep their defaults), validated.
    public static func parse(_ uri: String) throws -> WorkloadConfig {
        var config = WorkloadConfig()
        let body = uri.hasPrefix("gen:") ? uri.dropFirst(4) : Substring(uri)
        for item in body.split(separator: ",") where !item.isEmpty {
            let pair = item.split(separator: "=", maxSplits: 1).map(String.init)
            guard pair.count == 2 else {
                throw WorkloadError("generator input '\(uri)': expected key=value, got '\(item)'")
            }
            func number<T: FixedWidthInteger>(_ text: String) throws -> T {
                guard let v = T(text.replacingOccurrences(of: "_", with: "")) else {
                    throw WorkloadError("generator input '\(uri)': \(pair[0]) must be an integer, got '\(text)'")
                }
                return v
            }
            switch pair[0] {
            case "seed": config.seed = try number(pair[1])
            case "events": config.events = try number(pair[1])
            case "partitions": config.partitions = try number(pair[1])
            case "keys": config.keys = try number(pair[1])
            default:
                throw WorkloadError("generator input '\(uri)': unknown parameter '\(pair[0])'; expected seed, events, partitions, keys")
            }
        }
        if let problem = config.problem { throw WorkloadError("generator input '\(uri)': \(problem)") }
        return config
    }
}
