import Foundation
import SluiceCore
@testable import SluiceOracle

/// The bid schema with the reference watermark (2,000 ms out of orderness) and the given window.
func bidsPipeline(_ window: WindowSpec, _ aggregates: [AggregateSpec]) -> Pipeline {
    Pipeline(schema: .bids, keyField: "auction", timeField: "event_time_ms",
             watermark: WatermarkSpec(maxOutOfOrdernessMs: 2000), window: window, aggregates: aggregates)
}

/// Lines joined with `\n`, each ending with `\n`.
func text(_ lines: [String]) -> [UInt8] {
    Array(lines.map { $0 + "\n" }.joined().utf8)
}

func late(_ offsets: Int..., partition: Int = 0) -> [PartitionOffset] {
    offsets.map { PartitionOffset(partition: partition, offset: $0) }
}

/// A fresh empty directory under the system's temporary directory.
func temporaryDirectory() throws -> String {
    let path = (NSTemporaryDirectory() as NSString).appendingPathComponent("sluice-oracle-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}
