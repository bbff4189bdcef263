import Foundation
import SluiceDrivers
import SluiceWorkload

/// Writes a partitioned input directory (`part-00000.…`, as `sluice gen` writes it) into a topic:
/// file p's records, in order, into partition p, so that the oracle over the files is the
/// reference for a job reading the topic. For the demo, the benchmarks, the chaos harness and the
/// tests.
public enum KafkaTopicLoader {
    /// Returns the number of messages. `key` gives a record's message key (nil: no key).
    @discardableResult
    public static func load(directory: String, bootstrap: String, topic: String,
                            key: (Substring) -> [UInt8]? = { _ in nil }) throws -> Int {
        let producer = try KafkaProducer(properties: [("bootstrap.servers", bootstrap), ("linger.ms", "20")])
        var count = 0
        for (p, file) in try PartitionFiles.list(directory: directory).enumerated() {
            for line in try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n") {
                try producer.produce(topic: topic, partition: Int32(p), key: key(line), value: Array(line.utf8))
                count += 1
            }
        }
        try producer.flush(timeoutMs: 60_000)
        return count
    }

    /// A JSON order's customer id (`"customer":{"id":"…"}`), the key a producer of orders uses.
    public static func customerKey(_ line: Substring) -> [UInt8]? {
        guard let start = line.range(of: #""customer":{"id":""#), let end = line[start.upperBound...].firstIndex(of: "\"") else { return nil }
        return Array(line[start.upperBound..<end].utf8)
    }
}
