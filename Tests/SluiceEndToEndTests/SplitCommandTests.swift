// `sluice split`, end to end: a CSV file with a header split by the job's key (murmur2 on a string
// key) into part files that together hold every record once, the header in each, the bad records
// counted and set aside; bad flags exit 2 naming the flag.

import Foundation
import SluiceCore
import Testing

extension SluiceEndToEndTests {
    private func splitJob(in scratch: ScratchDir) throws -> String {
        let path = scratch.at("orders.yaml")
        try """
            name: orders
            format: csv
            csv: {header: true}
            schema:
              - {name: customer, type: string}
              - {name: amount, type: decimal, scale: 2}
              - {name: ts, type: timestamp}
            key: customer
            time: ts
            window: {kind: tumbling, size_ms: 60000}
            aggregates: [count, {sum: amount}]
            """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("sluice split: records by key into part files, bad ones set aside and counted")
    func splitWritesPartitionFiles() async throws {
        let scratch = try ScratchDir("split")
        defer { scratch.remove() }
        let job = try splitJob(in: scratch)
        let records = (0..<200).map { "cust-\($0 % 13),\($0).25,\(1_767_225_600_000 + $0)" }
        let input = scratch.at("orders.csv")
        try ("customer,amount,ts\n" + records.joined(separator: "\n") + "\nbroken line\ncust-1,1.234,5\n")
            .write(toFile: input, atomically: true, encoding: .utf8)
        let out = scratch.at("parts")
        let run = try await sluice(["split", "--job", job, "--input", input, "--partitions", "4", "--out", out], scratch: scratch, label: "split")
        #expect(run.exitedWith0, "\(run)")
        #expect(run.stdout.contains("200 records into 4 partitions") && run.stdout.contains("2 records not partitioned"), "\(run)")

        let partitioner = KeyPartitioner(.murmur2, partitions: 4)
        var seen: [String] = []
        for p in 0..<4 {
            let text = try String(contentsOfFile: (out as NSString).appendingPathComponent(String(format: "part-%05d.csv", p)), encoding: .utf8)
            let lines = text.split(separator: "\n").map(String.init)
            #expect(lines.first == "customer,amount,ts")
            for line in lines.dropFirst() {
                let key = String(line.prefix { $0 != "," })
                #expect(partitioner.murmur2Partition(Array(key.utf8)) == p, "\(line) in partition \(p)")
                seen.append(line)
            }
        }
        #expect(seen.sorted() == records.sorted())
        let rest = try String(contentsOfFile: (out as NSString).appendingPathComponent("unpartitioned.csv"), encoding: .utf8)
        #expect(rest == "customer,amount,ts\nbroken line\ncust-1,1.234,5\n")
    }

    @Test("sluice split: bad flags exit 2 naming the flag")
    func splitRefusesBadFlags() async throws {
        let scratch = try ScratchDir("split-flags")
        defer { scratch.remove() }
        let job = try splitJob(in: scratch)
        let input = scratch.at("in.csv")
        try "customer,amount,ts\na,1.00,1\n".write(toFile: input, atomically: true, encoding: .utf8)
        let full = scratch.at("full")
        try FileManager.default.createDirectory(atPath: full, withIntermediateDirectories: true)
        try "x".write(toFile: (full as NSString).appendingPathComponent("keep.txt"), atomically: true, encoding: .utf8)
        let cases: [([String], String)] = [
            (["split", "--job", job, "--input", input, "--partitions", "0", "--out", scratch.at("a")], "--partitions"),
            (["split", "--job", job, "--input", input, "--out", scratch.at("b")], "--partitions"),
            (["split", "--job", scratch.at("nope.yaml"), "--input", input, "--partitions", "2", "--out", scratch.at("c")], "--job"),
            (["split", "--job", job, "--input", scratch.at("nope.csv"), "--partitions", "2", "--out", scratch.at("d")], "--input"),
            (["split", "--job", job, "--input", input, "--partitions", "2", "--out", full], "--out"),
        ]
        for (arguments, flag) in cases {
            let result = try await sluice(arguments, scratch: scratch, label: "split-bad")
            #expect(result.status == 2 && !result.signaled && result.stderr.contains(flag), "\(arguments): \(result)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: full) == ["keep.txt"], "a refused split wrote into --out")
    }
}
