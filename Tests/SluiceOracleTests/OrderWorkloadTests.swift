import Foundation
import SluiceCore
import SluiceJob
import SluiceOracle
import SluiceWorkload
import Testing

@Suite struct OrderWorkloadTests {
    static let job: JobSpec = {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../jobs/orders-revenue.yaml").path
        do { return try JobSpec.parse(yaml: String(contentsOfFile: path, encoding: .utf8)) } catch { fatalError("jobs/orders-revenue.yaml: \(error)") }
    }()

    @Test func theBuiltInRevenueJobIsTheOneInJobs() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../jobs/orders-revenue.yaml").path
        #expect(try String(contentsOfFile: path, encoding: .utf8) == OrderGenerator.revenueJob)
    }

    @Test func ordersDecodeArePlacedByMurmur2AndRepeatSome() throws {
        let config = WorkloadConfig(seed: 7, events: 40_000, partitions: 4, keys: 500)
        let generator = OrderGenerator(config)
        let pipeline = Self.job.pipeline
        let decoder = RecordDecoder(schema: pipeline.schema, format: pipeline.format)
        let partitioner = KeyPartitioner(pipeline.partitioner, partitions: config.partitions)
        let customer = try #require(pipeline.schema.index(of: "customer"))
        var malformed = 0, duplicates = 0, orders = 0
        for partition in 0..<config.partitions {
            var seen: [String: Int] = [:]
            for offset in 0..<generator.eventCount(partition: partition) {
                var bytes: [UInt8] = []
                generator.appendLine(partition: partition, offset: offset, to: &bytes)
                #expect(bytes.last == 10)
                let line = String(decoding: bytes.dropLast(), as: UTF8.self)
                switch bytes.dropLast().withUnsafeBytes({ decoder.decode($0) }) {
                case .failure:
                    malformed += 1
                    #expect(generator.kind(partition: partition, offset: offset) == .malformed, "offset \(offset): \(line)")
                case .success(let values):
                    #expect(partitioner.partition(of: [values[customer]]) == partition)
                    if seen[line] != nil { duplicates += 1 } else { orders += 1 }
                    seen[line] = offset
                }
            }
        }
        let total = Double(config.events)
        #expect(Double(malformed) / total > 0.0003 && Double(malformed) / total < 0.003)
        #expect(Double(duplicates) / total > 0.005 && Double(duplicates) / total < 0.02)
        // Replayable: the same (partition, offset) gives the same line.
        var a: [UInt8] = [], b: [UInt8] = []
        OrderGenerator(config).appendLine(partition: 2, offset: 1_234, to: &a)
        generator.appendLine(partition: 2, offset: 1_234, to: &b)
        #expect(a == b)
    }

    @Test func bidsAsJSONAreTheSameEvents() throws {
        let config = WorkloadConfig(seed: 3, events: 5_000, partitions: 2, keys: 100)
        let generator = BidGenerator(config)
        let decoder = RecordDecoder(schema: .bids, format: .json)
        for offset in 0..<generator.eventCount(partition: 1) {
            var line: [UInt8] = []
            generator.appendJSONLine(partition: 1, offset: offset, to: &line)
            let bid = generator.bid(partition: 1, offset: offset)
            let decoded = line.dropLast().withUnsafeBytes { decoder.decode($0) }
            if bid.kind == .malformed {
                #expect(throws: RecordFailure.self) { try decoded.get() }
            } else {
                #expect(try decoded.get() == [.uint64(bid.auction), .uint64(bid.bidder), .int64(bid.price), .int64(bid.eventTimeMs)])
            }
        }
    }
}

/// The records oracle over the orders workload (100,000 events, four partitions, partition check
/// on): it must take a few seconds at most in a debug build, dead-letter exactly the lines the
/// generator spoilt, and drop as duplicates only re-deliveries.
@Suite struct OrderWorkloadOracleTests {
    @Test func theOracleRunsTheOrdersJob() throws {
        let config = WorkloadConfig(seed: 11, events: 100_000, partitions: 4, keys: 500)
        let generator = OrderGenerator(config)
        let pipeline = OrderWorkloadTests.job.pipeline
        let clock = ContinuousClock()
        var total = OracleResult()
        var elapsed = Duration.zero
        for partition in 0..<config.partitions {
            var text: [UInt8] = []
            for offset in 0..<generator.eventCount(partition: partition) {
                generator.appendLine(partition: partition, offset: offset, to: &text)
            }
            var one = OracleResult()
            elapsed += clock.measure {
                one = Oracle.run(pipeline: pipeline, partition: partition, text: text, partitions: config.partitions)
            }
            let malformed = (0..<generator.eventCount(partition: partition)).filter { generator.kind(partition: partition, offset: $0) == .malformed }
            #expect(one.deadLetters.map(\.offset) == malformed, "partition \(partition)")
            for d in one.duplicates {
                guard case .duplicate = generator.kind(partition: partition, offset: d.offset) else {
                    Issue.record("partition \(partition) offset \(d.offset) dropped as a duplicate but is not one")
                    continue
                }
            }
            total.rows += one.rows
            total.duplicates += one.duplicates
            total.filtered += one.filtered
            total.late += one.late
        }
        print("records oracle, orders job, \(config.events) events: \(elapsed); rows \(total.rows.count), duplicates \(total.duplicates.count), filtered \(total.filtered), late \(total.late.count)")
        #expect(total.duplicates.count > 300 && total.filtered > 20_000 && !total.rows.isEmpty)
    }
}
