import Foundation
import SluiceConnectors
import SluiceCore
import SluiceDrivers
import SluiceJob
import SluiceOracle
import SluiceStorage
import SluiceWorkload
import Testing

/// A view of a compacted topic (librdkafka's mock cluster): JSON rows keyed by their id, nulls
/// (tombstones) for deletes, some malformed and some filtered out, read by `sluice run`, SIGKILLed
/// twice and resumed; the view in SQLite equals the oracle's view of each key's last record.
extension SluiceEndToEndTests.KafkaEndToEndTests {
    static let kafkaViewJob = """
        name: customers-view
        kind: view
        format: json
        schema:
          - {name: id, type: string}
          - {name: tier, type: string, nullable: true}
          - {name: credit, type: decimal, scale: 2, min: 0}
          - {name: active, type: bool}
        key: id
        filter: "active"
        table: customers_view
        """

    @Test func aViewOfACompactedTopicKilledAndResumedEqualsTheOracle() async throws {
        let scratch = try ScratchDir("kafka-view")
        defer { scratch.remove() }
        let cluster = try KafkaMockCluster(brokers: 1)
        try cluster.createTopic("customers", partitions: 3)
        let producer = try KafkaProducer(properties: [("bootstrap.servers", cluster.bootstrapServers), ("partitioner", "murmur2_random")])
        var rng = SplitMix64(seed: 5)
        var latest: [String: [String: String?]?] = [:]
        let tiers = ["gold", "silver", "bronze"]
        for _ in 0..<30_000 {
            let id = "cust-\(rng.next() % 400)"
            if rng.next() % 10 == 0 {
                try producer.produce(topic: "customers", key: Array(id.utf8), value: nil)
                latest[id] = .some(nil)
                continue
            }
            let tier: String? = rng.next() % 6 == 0 ? nil : tiers[Int(rng.next() % 3)]
            let credit = rng.next() % 40 == 0 ? "\"abc\"" : "\(rng.next() % 5_000).\(rng.next() % 100)"
            let active = rng.next() % 5 != 0
            let json = "{\"id\":\"\(id)\",\"tier\":\(tier.map { "\"\($0)\"" } ?? "null"),\"credit\":\(credit),\"active\":\(active)}"
            try producer.produce(topic: "customers", key: Array(id.utf8), value: Array(json.utf8))
            latest[id] = .some(["id": id, "tier": tier, "credit": credit, "active": active ? "t" : "f"])
        }
        try producer.flush(timeoutMs: 30_000)

        let jobPath = scratch.at("job.yaml")
        try Self.kafkaViewJob.write(toFile: jobPath, atomically: true, encoding: .utf8)
        let job = try JobSpec.parse(yaml: Self.kafkaViewJob)
        let output = scratch.at("out.db")
        let run = ["run", "--job", jobPath, "--input", "kafka://\(cluster.bootstrapServers)/customers?stop=latest",
                   "--output", "sqlite:" + output, "--parallelism", "2", "--checkpoint-interval-ms", "100", "--rate", "2000", "--quiet"]
        let report = try await killRepeatedly(run, scratch: scratch, label: "run", seed: 8, delaysMs: 700...2_000, targetKills: 2, maxAttempts: 6)
        #expect(report.killedAfterMs.count == 2, "expected 2 kills of a running process: \(report)")
        let final = try await sluice(run, scratch: scratch, label: "run-final")
        try #require(final.exitedWith0, "the run after the kills did not complete: \(final)")

        let oracle = try ViewOracle(job: job)
        let expected = oracle.view(of: latest.values.compactMap { $0 }).values.map { $0.map(RecordText.text).joined(separator: "|") }.sorted()
        let db = try SQLiteDatabase(path: output)
        let q = try db.prepare("SELECT id, tier, credit, active FROM customers_view")
        var got: [String] = []
        while try q.step() {
            got.append([q.string(0), q.isNull(1) ? "" : q.string(1), q.string(2), q.int64(3) != 0 ? "true" : "false"].joined(separator: "|"))
        }
        got.sort()
        #expect(got == expected, "view \(got.count) rows, oracle \(expected.count): missing \(Set(expected).subtracting(got).sorted().prefix(3)), extra \(Set(got).subtracting(expected).sorted().prefix(3))")
        let deadLetters = try db.prepare("SELECT COUNT(*) FROM customers_view_dead_letters")
        _ = try deadLetters.step()
        #expect(expected.count > 100 && deadLetters.int64(0) > 100, "\(expected.count) rows, \(deadLetters.int64(0)) dead letters")
        print("[kafka view] 30,000 messages over 400 keys: \(got.count) rows, \(deadLetters.int64(0)) dead letters, \(report)")
    }
}
