import Foundation
import SluiceConnectors
import SluiceDrivers
import SluiceJob
import SluiceVerification
import SluiceWorkload
import Testing

/// `sluice run` with a Kafka topic as its input or its output, against librdkafka's mock cluster
/// (in this test process; the `sluice` children use its bootstrap servers), SIGKILLed and resumed,
/// compared with the oracle over the same records.
extension SluiceEndToEndTests {
@Suite struct KafkaEndToEndTests {
    /// Generated orders in files (the oracle's input) and the same records, partition by
    /// partition and in order, in the topic `orders`.
    static func ordersTopic(_ scratch: ScratchDir, cluster: KafkaMockCluster, events: Int, partitions: Int) async throws -> String {
        let input = scratch.at("orders")
        let gen = try await sluice(["gen", "--seed", "41", "--events", String(events), "--partitions", String(partitions), "--keys", "300",
                                    "--workload", "orders", "--out", input], scratch: scratch, label: "gen")
        try #require(gen.exitedWith0, "gen: \(gen)")
        try cluster.createTopic("orders", partitions: partitions)
        try KafkaTopicLoader.load(directory: input, bootstrap: cluster.bootstrapServers, topic: "orders")
        return input
    }

    @Test func runFromATopicKilledAndResumedEqualsTheOracle() async throws {
        let scratch = try ScratchDir("kafka-source-kill")
        defer { scratch.remove() }
        let cluster = try KafkaMockCluster(brokers: 3)
        let input = try await Self.ordersTopic(scratch, cluster: cluster, events: 120_000, partitions: 4)
        let jobPath = E2E.job("orders-revenue")
        let output = "sqlite:" + scratch.at("out.db")
        let source = "kafka://\(cluster.bootstrapServers)/orders?stop=latest"
        // 30,000 orders per partition at 6,000 events/s: about 5 s, so the kills land mid-run.
        let run = ["run", "--job", jobPath, "--input", source, "--output", output, "--parallelism", "2",
                   "--checkpoint-interval-ms", "100", "--rate", "6000", "--quiet"]
        let report = try await killRepeatedly(run, scratch: scratch, label: "run", seed: 21, delaysMs: 900...2_500,
                                              targetKills: 2, maxAttempts: 6)
        print("[kafka source, kill-and-resume] \(report)")
        #expect(report.killedAfterMs.count == 2, "expected 2 kills of a running process: \(report)")
        let final = try await sluice(run, scratch: scratch, label: "run-final")
        try #require(final.exitedWith0, "the run after the kills did not complete: \(final)")
        let verification = try Verification.verify(job: try JobSpec.load(path: jobPath), input: "file:\(input)", output: output)
        #expect(verification.passed, "\(verification.report())")
        #expect(verification.actualRows > 250, "suspiciously few rows: \(verification.report())")
    }

    @Test func windowsIntoATopicExactlyOnceWithoutKillsAndAtLeastOnceWithKills() async throws {
        let scratch = try ScratchDir("kafka-sink")
        defer { scratch.remove() }
        let cluster = try KafkaMockCluster(brokers: 3)
        let input = try await Self.ordersTopic(scratch, cluster: cluster, events: 80_000, partitions: 4)
        let jobPath = E2E.job("orders-revenue")
        let job = try JobSpec.load(path: jobPath)
        for topic in ["clean", "killed"] {
            try cluster.createTopic(topic, partitions: 8)
            try cluster.createTopic("\(topic).sluice-progress", partitions: 1)
        }

        // No kills: the topic equals the oracle, row for row.
        let cleanState = scratch.at("clean.db")
        let clean = "kafka://\(cluster.bootstrapServers)/clean"
        let run = try await sluice(["run", "--job", jobPath, "--input", "file:\(input)", "--output", clean, "--state", cleanState,
                                    "--parallelism", "2", "--checkpoint-interval-ms", "100", "--quiet"], scratch: scratch, label: "clean")
        try #require(run.exitedWith0, "\(run)")
        let exact = try Verification.verify(job: job, input: "file:\(input)", output: clean, statePath: cleanState)
        #expect(exact.passed, "\(exact.report())")
        #expect(exact.actualRows > 250, "suspiciously few rows: \(exact.report())")

        // Kills: the mock shows aborted and open transactions as committed, so a kill mid-publish
        // may show rows twice; every oracle row must be there, and nothing else.
        let killedState = scratch.at("killed.db")
        let killed = "kafka://\(cluster.bootstrapServers)/killed"
        let args = ["run", "--job", jobPath, "--input", "file:\(input)", "--output", killed, "--state", killedState,
                    "--parallelism", "2", "--checkpoint-interval-ms", "100", "--rate", "6000", "--quiet"]
        let report = try await killRepeatedly(args, scratch: scratch, label: "killed", seed: 5, delaysMs: 800...2_000,
                                              targetKills: 2, maxAttempts: 6)
        print("[kafka sink, kill-and-resume] \(report)")
        #expect(report.killedAfterMs.count == 2, "expected 2 kills of a running process: \(report)")
        let final = try await sluice(args, scratch: scratch, label: "killed-final")
        try #require(final.exitedWith0, "\(final)")
        let atLeastOnce = try Verification.verify(job: job, input: "file:\(input)", output: killed, statePath: killedState)
        #expect(atLeastOnce.missing.isEmpty && atLeastOnce.wrong.isEmpty && atLeastOnce.extra.isEmpty,
                "every oracle row, nothing else: \(atLeastOnce.report())")
        #expect(atLeastOnce.deadMissing.isEmpty && atLeastOnce.deadExtra.isEmpty && atLeastOnce.lateMissing.isEmpty,
                "rejected events in the store: \(atLeastOnce.report())")
    }
}
}

extension SluiceEndToEndTests.KafkaEndToEndTests {
    /// The README's Kafka demo: the mock cluster, a topic of JSON orders, the cluster reading it, a
    /// worker SIGKILLed, the oracle.
    @Test func theKafkaDemoPasses() async throws {
        let scratch = try ScratchDir("kafka-demo")
        defer { scratch.remove() }
        let demo = try await sluice(["demo", "--kafka", "--dir", scratch.at("demo"), "--events", "96000", "--seconds", "10",
                                     "--kill-at", "4", "--add-at", "7"], scratch: scratch, label: "demo", timeout: .seconds(300))
        #expect(demo.exitedWith0, "\(demo)")
        #expect(demo.stdout.contains("PASS: the sink equals the oracle"), "\(demo.stdout.suffix(2_000))")
        #expect(demo.stdout.contains("SIGKILL worker-2"), "no worker was killed: \(demo.stdout.suffix(2_000))")
    }
}

extension SluiceEndToEndTests.KafkaEndToEndTests {
    /// `time: kafka_timestamp`: the message timestamp is the event time. The oracle reads the same
    /// records with the timestamp written into them, as the source hands them to the engine.
    @Test func theMessageTimestampIsTheEventTime() async throws {
        let scratch = try ScratchDir("kafka-timestamp")
        defer { scratch.remove() }
        let cluster = try KafkaMockCluster(brokers: 1)
        try cluster.createTopic("stamped", partitions: 2)
        let producer = try KafkaProducer(properties: [("bootstrap.servers", cluster.bootstrapServers)])
        let files = scratch.at("oracle")
        try FileManager.default.createDirectory(atPath: files, withIntermediateDirectories: true)
        let base: Int64 = 1_767_225_600_000
        for p in 0..<2 {
            var oracle = ""
            for i in 0..<3_000 {
                let ms = base + Int64(i) * 9 + Int64(i % 7 == 0 ? -1_500 : 0)  // some out of order, a few late
                let body = #""order_id":"o-\#(p)-\#(i)","customer":{"id":"c-\#(i % 13)"},"amount":\#(i % 50).25"#
                let value = i % 500 == 0 ? "not json" : "{\(body)}"
                try producer.produce(topic: "stamped", partition: Int32(p), key: nil, value: Array(value.utf8), timestampMs: ms)
                oracle += (i % 500 == 0 ? value : #"{"kafka_timestamp":\#(ms),\#(body)}"#) + "\n"
            }
            try oracle.write(toFile: files + "/part-0000\(p).json", atomically: true, encoding: .utf8)
        }
        try producer.flush(timeoutMs: 10_000)
        let job = scratch.at("stamped.yaml")
        try """
            name: stamped
            format: json
            schema:
              - {name: order_id, type: string}
              - {name: customer, type: string, path: customer.id}
              - {name: amount, type: decimal, scale: 2}
            key: customer
            partition_check: false
            time: kafka_timestamp
            watermark: {max_out_of_orderness_ms: 1000}
            window: {kind: tumbling, size_ms: 5000}
            aggregates: [count, {sum: amount}]
            table: stamped
            """.write(toFile: job, atomically: true, encoding: .utf8)
        let output = "sqlite:" + scratch.at("out.db")
        let run = try await sluice(["run", "--job", job, "--input", "kafka://\(cluster.bootstrapServers)/stamped?stop=latest", "--output", output,
                                    "--quiet"], scratch: scratch, label: "run")
        try #require(run.exitedWith0, "\(run)")
        let verification = try Verification.verify(job: try JobSpec.load(path: job), input: "file:\(files)", output: output)
        #expect(verification.passed, "\(verification.report())")
        #expect(verification.actualRows > 20, "\(verification.report())")
        // A file input cannot supply the message timestamp: refused, naming the fix.
        let refused = try await sluice(["run", "--job", job, "--input", "file:\(files)", "--output", "sqlite:" + scratch.at("other.db"), "--quiet"],
                                       scratch: scratch, label: "refused")
        #expect(refused.status == 2 && refused.stderr.contains("kafka_timestamp"), "\(refused)")
    }
}
