// `sluice split`'s logic: records go to their key's partition under the job's partitioner (checked
// here against murmur2 computed directly), the CSV header goes to every part, a quoted multi-line
// record stays whole, and undecodable or null-keyed records go to unpartitioned.<ext>.

import Foundation
import SluiceConnectors
import SluiceCore
import SluiceJob
import Testing

@Suite("Splitter") struct SplitterTests {
    static func scratch(_ label: String) -> String {
        NSTemporaryDirectory() + "sluice-split-\(label)-\(UUID().uuidString)"
    }

    static func read(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }

    @Test("CSV with a header, murmur2 on a string key")
    func csv() throws {
        let dir = Self.scratch("csv")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let job = try JobSpec.parse(yaml: """
            name: orders
            format: csv
            csv: {header: true}
            schema:
              - {name: customer, type: string, nullable: true}
              - {name: amount, type: decimal, scale: 2}
              - {name: ts, type: timestamp}
            key: customer
            time: ts
            window: {kind: tumbling, size_ms: 60000}
            aggregates: [count]
            """)
        let records = ["cust-1,1.00,1000", "\"multi\nline\",2.50,2000", "cust-2,3.00,3000", "cust-1,4.00,4000", "\"a,b\",0.01,5000"]
        let bad = ["not a record", ",1.00,6000"]  // wrong field count; a null key
        let input = (dir as NSString).appendingPathComponent("orders.csv")
        try ("customer,amount,ts\n" + (records + bad).joined(separator: "\n") + "\n").write(toFile: input, atomically: true, encoding: .utf8)

        let out = (dir as NSString).appendingPathComponent("parts")
        let summary = try Splitter(job: job, partitions: 3).split(input: input, into: out)

        let partitioner = KeyPartitioner(.murmur2, partitions: 3)
        let keys = ["cust-1", "multi\nline", "cust-2", "cust-1", "a,b"]
        var expected = Array(repeating: "customer,amount,ts\n", count: 3)
        for (record, key) in zip(records, keys) { expected[partitioner.murmur2Partition(Array(key.utf8))] += record + "\n" }
        for p in 0..<3 {
            #expect(Self.read((out as NSString).appendingPathComponent(String(format: "part-%05d.csv", p))) == expected[p], "partition \(p)")
        }
        #expect(summary.perPartition.reduce(0, +) == 5 && summary.unpartitioned == 2)
        #expect(Self.read((out as NSString).appendingPathComponent("unpartitioned.csv")) == "customer,amount,ts\n" + bad.joined(separator: "\n") + "\n")
        // A second split into the same directory is refused: nothing is overwritten.
        #expect(throws: Splitter.SplitError.self) { try Splitter(job: job, partitions: 3).split(input: input, into: out) }
    }

    @Test("JSON lines, a composite key, modulo refused for it, no unpartitioned file when all fit")
    func json() throws {
        let dir = Self.scratch("json")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let job = try JobSpec.parse(yaml: """
            name: events
            format: json
            schema:
              - {name: customer, type: string, path: customer.id}
              - {name: n, type: int64}
              - {name: ts, type: timestamp}
            key: [customer, n]
            time: ts
            window: {kind: tumbling, size_ms: 60000}
            aggregates: [count]
            """)
        let lines = (0..<40).map { #"{"customer": {"id": "c\#($0 % 7)"}, "n": \#($0 % 3 - 1), "ts": \#($0)}"# }
        let input = (dir as NSString).appendingPathComponent("events.json")
        try (lines.joined(separator: "\n") + "\n").write(toFile: input, atomically: true, encoding: .utf8)
        let out = (dir as NSString).appendingPathComponent("parts")
        let summary = try Splitter(job: job, partitions: 4).split(input: input, into: out)

        let partitioner = KeyPartitioner(.murmur2, partitions: 4)
        var expected = Array(repeating: "", count: 4)
        for i in 0..<40 {
            let bytes = Array("c\(i % 7)".utf8) + [0x1F] + Array(String(i % 3 - 1).utf8)
            expected[partitioner.murmur2Partition(bytes)] += lines[i] + "\n"
        }
        for p in 0..<4 {
            #expect((Self.read((out as NSString).appendingPathComponent(String(format: "part-%05d.json", p))) ?? "") == expected[p], "partition \(p)")
        }
        #expect(summary.unpartitioned == 0 && summary.unpartitionedPath == nil)
        #expect(!FileManager.default.fileExists(atPath: (out as NSString).appendingPathComponent("unpartitioned.json")))
    }
}
