import Testing
import Foundation
import SluiceCore
import SluiceWorkload
@testable import SluiceOracle

@Suite struct InputOutputTests {
    let pipeline = bidsPipeline(.tumbling(sizeMs: 10_000),
                                [AggregateSpec(.count), AggregateSpec(.sum, "price"), AggregateSpec(.max, "price")])

    @Test func partitionsOfAFileInputAreMerged() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let partitions = [
            "2,1,5,1000\nbad\n2,1,7,30000\n2,1,1,1000\n",   // key 2; offset 3 is late (W = 28000)
            "1,1,4,2000\n3,1,6,15000",                      // keys 1 and 3; no final newline
            "",                                             // an empty partition
        ]
        for (p, content) in partitions.enumerated() {
            let path = (directory as NSString).appendingPathComponent(PartitionFiles.name(partition: p))
            try Data(content.utf8).write(to: URL(fileURLWithPath: path))
        }
        #expect(PartitionFiles.name(partition: 1) == "part-00001.csv")

        let input = try WorkloadInput.parse("file:\(directory)")
        let result = try Oracle.run(pipeline: pipeline, input: input)
        #expect(result.rows == ["0,1,1,4,4", "0,2,1,5,5", "10000,3,1,6,6", "30000,2,1,7,7"])
        #expect(result.late == [PartitionOffset(partition: 0, offset: 3)])
        #expect(result.deadLetters == [DeadLetter(partition: 0, offset: 1, reason: "expected 4 fields, got 1")])

        // The same as running each partition on its own and merging.
        let parts = partitions.enumerated().map { Oracle.run(pipeline: pipeline, partition: $0.offset, text: Array($0.element.utf8)) }
        #expect(result.rows == parts.flatMap(\.rows).sorted())
        #expect(result.late == parts.flatMap(\.late).sorted())
    }

    @Test func lateAndDeadLettersAreSortedByPartitionThenOffset() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // 11 partitions so that partition 10 would sort before 2 as text.
        for p in 0..<11 {
            let path = (directory as NSString).appendingPathComponent(PartitionFiles.name(partition: p))
            try Data("x\n9,1,1,50000\n9,1,1,100\ny\n".utf8).write(to: URL(fileURLWithPath: path))
        }
        let result = try Oracle.run(pipeline: pipeline, input: WorkloadInput.parse(directory))
        #expect(result.late == (0..<11).map { PartitionOffset(partition: $0, offset: 2) })
        #expect(result.deadLetters.map(\.position) == (0..<11).flatMap {
            [PartitionOffset(partition: $0, offset: 0), PartitionOffset(partition: $0, offset: 3)]
        })
        #expect(result.rows == Array(repeating: "50000,9,1,1,1", count: 11))
        #expect(PartitionOffset(partition: 1, offset: 5) < PartitionOffset(partition: 2, offset: 0))
        #expect(PartitionOffset(partition: 2, offset: 1) < PartitionOffset(partition: 2, offset: 3))
    }

    @Test func generatorInputMatchesItsText() throws {
        let input = try WorkloadInput.parse("gen:seed=7,events=200000,partitions=3,keys=50")
        let merged = try Oracle.run(pipeline: pipeline, input: input)
        var rows: [String] = [], lateEvents: [PartitionOffset] = [], dead: [DeadLetter] = []
        for p in 0..<3 {
            let one = Oracle.run(pipeline: pipeline, partition: p, text: try input.readPartition(p))
            rows += one.rows
            lateEvents += one.late
            dead += one.deadLetters
        }
        #expect(merged.rows == rows.sorted())
        #expect(merged.late == lateEvents)
        #expect(merged.deadLetters == dead)
        // Every line is counted once: in a window, late, or a dead letter.
        let counted = merged.rows.reduce(0) { $0 + Int($1.split(separator: ",")[2])! }
        #expect(counted + merged.late.count + merged.deadLetters.count == 200000)
        #expect(!merged.late.isEmpty)
    }

    @Test func missingInputThrows() {
        #expect(throws: (any Error).self) {
            try Oracle.run(pipeline: pipeline, input: .files(directory: "/nonexistent/sluice-oracle"))
        }
    }

    @Test func writeProducesTheThreeFiles() throws {
        let base = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let directory = (base as NSString).appendingPathComponent("nested/out")  // created by write
        let result = OracleResult(
            rows: ["0,1,2,8,5", "10000,2,1,3,3"],
            late: [PartitionOffset(partition: 0, offset: 4), PartitionOffset(partition: 1, offset: 0)],
            deadLetters: [
                DeadLetter(partition: 0, offset: 2, reason: "field 'price' must be >= 1"),
                DeadLetter(partition: 1, offset: 7, reason: "expected 4 fields, got 3"),
            ])
        try Oracle.write(result, pipeline: pipeline, to: directory)

        func read(_ name: String) throws -> String {
            try String(contentsOfFile: (directory as NSString).appendingPathComponent(name), encoding: .utf8)
        }
        #expect(try read("results.csv") == "window_start_ms,auction,count,sum_price,max_price\n0,1,2,8,5\n10000,2,1,3,3\n")
        #expect(try read("late.csv") == "partition,offset\n0,4\n1,0\n")
        #expect(try read("dead_letters.csv") ==
                "partition,offset,reason\n0,2,field 'price' must be >= 1\n1,7,\"expected 4 fields, got 3\"\n")

        // An empty result still has its headers; writing again replaces the files.
        try Oracle.write(OracleResult(), pipeline: pipeline, to: directory)
        #expect(try read("results.csv") == "window_start_ms,auction,count,sum_price,max_price\n")
        #expect(try read("late.csv") == "partition,offset\n")
        #expect(try read("dead_letters.csv") == "partition,offset,reason\n")
    }
}
