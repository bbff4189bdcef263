import Foundation
@testable import SluiceConnectors
import SluiceCore
import SluiceDrivers
import SluiceJob
import SluiceStorage
import SluiceWorkload
import Testing

/// The exactly-once Kafka sink's real librdkafka path, step by step, against the mock cluster with
/// the transaction-outcome log applying Kafka's fencing and read_committed rules: a crash between
/// the store commit and the Kafka commit, the next owner's recovery, and a zombie.
@Suite struct KafkaSinkRecoveryTests {
    struct Setup {
        let cluster: KafkaMockCluster
        let job: JobSpec
        let uri: String
        let statePath: String
        let outcomes: KafkaTransactionOutcomes
        let directory: String
    }

    static func setUp() throws -> Setup {
        let cluster = try KafkaMockCluster(brokers: 3)
        try cluster.createTopic("out", partitions: 4)
        try cluster.createTopic("out.sluice-progress", partitions: 1)
        let directory = NSTemporaryDirectory() + "sluice-kafka-sink-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return Setup(cluster: cluster, job: try JobSpec.parse(yaml: OrderGenerator.revenueJob),
                     uri: "kafka://\(cluster.bootstrapServers)/out", statePath: directory + "/state.db",
                     outcomes: KafkaTransactionOutcomes(path: directory + "/outcomes.log"), directory: directory)
    }

    /// One checkpoint's output: `count` rows of distinct customers.
    static func output(seq: Int64, count: Int) -> PartitionOutput {
        var output = PartitionOutput(width: 0)
        for i in 0..<Int64(count) {
            let amount = Value.decimal(100 * i + 5, scale: 2)
            let values: [Value] = [.string("cust-\(seq)-\(i)"), .int64(i + 1), amount, .int64(i + 1), amount, .string("paid")]
            output.records.append(RecordRow(windowStart: 60_000 * seq, values: values))
        }
        return output
    }

    /// stage, the fenced store commit, and (unless `crash`) publish: the runner's order.
    static func commit(_ sink: any Sink, store: CheckpointStore, epoch: Int64, seq: Int64, rows: Int, publish: Bool = true) async throws {
        let output = Self.output(seq: seq, count: rows)
        let files = try sink.stage(output, partition: 0, epoch: epoch, seq: seq)
        let checkpoint = Checkpoint(partition: 0, seq: seq, epoch: epoch, offset: seq * 10, position: seq * 10, watermark: 0,
                                    finished: false, state: [], files: files)
        try await store.commit(checkpoint, fromOffset: (seq - 1) * 10, output: output, writer: sink)
        if publish { try sink.publish(files: files, partition: 0, epoch: epoch) }
    }

    /// The topic as read_committed shows it (through the outcome log), as row texts.
    static func committedRows(_ setup: Setup) throws -> [String] {
        let rows = KafkaRows(job: setup.job)
        return try KafkaTopicReader.read(spec: try KafkaSpec(uri: setup.uri), outcomes: setup.outcomes) { try rows.rowText($0) }
    }

    @Test func aCheckpointCommittedButNotPublishedIsPublishedOnceByTheNextOwner() async throws {
        let setup = try Self.setUp()
        defer { try? FileManager.default.removeItem(atPath: setup.directory) }
        let store = try CheckpointStore(path: setup.statePath)

        // Owner 1 (epoch 1): checkpoint 1 published; checkpoint 2 committed in the store, then a crash.
        let first = try KafkaSink(uri: setup.uri, job: setup.job, logger: .silent, connect: true, outcomes: setup.outcomes)
        try first.admit(SinkOwner(job: "orders-revenue", fingerprint: "f"), statePath: setup.statePath)
        try await store.bind(job: "f", partitions: 4, writer: first)
        #expect(try await store.claim(partition: 0, epoch: 1))
        try first.recover(partition: 0, epoch: 1, last: nil)
        try await Self.commit(first, store: store, epoch: 1, seq: 1, rows: 5)
        try await Self.commit(first, store: store, epoch: 1, seq: 2, rows: 7, publish: false)
        let afterCrash = try Self.committedRows(setup)
        #expect(afterCrash.count == 5, "\(afterCrash) log: \((try? String(contentsOfFile: setup.outcomes.path, encoding: .utf8)) ?? "-")")

        // Owner 2 (epoch 2): recovery fences owner 1 and publishes checkpoint 2 from the outbox.
        let second = try KafkaSink(uri: setup.uri, job: setup.job, logger: .silent, connect: true, outcomes: setup.outcomes)
        try second.admit(SinkOwner(job: "orders-revenue", fingerprint: "f"), statePath: setup.statePath)
        #expect(try await store.claim(partition: 0, epoch: 2))
        let last = try #require(try await store.checkpoints(partition: 0).first)
        #expect(last.seq == 2)
        try second.recover(partition: 0, epoch: 2, last: last)
        var rows = try Self.committedRows(setup)
        #expect(rows.count == 12 && Set(rows).count == 12, "\(rows)")

        // A second recovery (another crash before any new commit) publishes nothing again.
        let third = try KafkaSink(uri: setup.uri, job: setup.job, logger: .silent, connect: true, outcomes: setup.outcomes)
        try third.admit(SinkOwner(job: "orders-revenue", fingerprint: "f"), statePath: setup.statePath)
        #expect(try await store.claim(partition: 0, epoch: 3))
        try third.recover(partition: 0, epoch: 3, last: last)
        try await Self.commit(third, store: store, epoch: 3, seq: 3, rows: 2)
        rows = try Self.committedRows(setup)
        #expect(rows.count == 14 && Set(rows).count == 14, "\(rows)")

        // The zombie (owner 2, epoch 2, fenced in the store by epoch 3 and in Kafka by owner 3's
        // init): its store commit is refused, and a publish it still attempts cannot commit.
        await #expect(throws: CommitFenced.self) {
            try await Self.commit(second, store: store, epoch: 2, seq: 4, rows: 3)
        }
        #expect(throws: KafkaPublishError.self) {
            try second.stage(Self.output(seq: 9, count: 3), partition: 0, epoch: 2, seq: 9)
            try second.publish(files: [], partition: 0, epoch: 2)
        }
        rows = try Self.committedRows(setup)
        #expect(rows.count == 14, "the zombie's rows are visible: \(rows)")
        let counts = setup.outcomes.counts()
        #expect(counts["init"] == 3 && counts["fenced"] == 1, "\(counts)")
    }

    @Test func theTransactionTimeoutIsCheckedAgainstTheCheckpointInterval() throws {
        let job = try JobSpec.parse(yaml: OrderGenerator.revenueJob)  // checkpoint interval 1 s
        #expect(throws: SinkError.self) {
            try SinkFactory.validate(uri: "kafka://127.0.0.1:9092/out?transaction.timeout.ms=1500", job: job)
        }
        #expect(throws: SinkError.self) {
            try SinkFactory.validate(uri: "kafka://127.0.0.1:9092/out?transaction.timeout.ms=3600000", job: job)
        }
        try SinkFactory.validate(uri: "kafka://127.0.0.1:9092/out?transaction.timeout.ms=20000", job: job)
        try SinkFactory.validate(uri: "kafka://127.0.0.1:9092/out", job: job)
    }

    @Test func aMissingTopicIsRefusedAtStartNamingIt() throws {
        let cluster = try KafkaMockCluster(brokers: 1)
        try cluster.createTopic("out", partitions: 2)
        let job = try JobSpec.parse(yaml: OrderGenerator.revenueJob)
        do {
            _ = try SinkFactory.open(uri: "kafka://\(cluster.bootstrapServers)/out", job: job)
            Issue.record("a sink without its progress topic was opened")
        } catch let error as SinkError {
            #expect(error.description.contains("'out.sluice-progress' does not exist"), "\(error)")
        }
        do {
            _ = try SinkFactory.open(uri: "kafka://\(cluster.bootstrapServers)/missing?mode=at_least_once", job: job)
            Issue.record("a sink to a missing topic was opened")
        } catch let error as SinkError {
            #expect(error.description.contains("'missing' does not exist"), "\(error)")
        }
    }
}

/// The URI's words, its secrets, and what it refuses.
@Suite struct KafkaSpecTests {
    @Test func wordsAndProperties() throws {
        let spec = try KafkaSpec(uri: "kafka://a:9092,b:9093/orders.v1?stop=latest&mode=at_least_once&group=g&partitioner=consistent_random&security.protocol=SASL_SSL&sasl.mechanism=PLAIN")
        #expect(spec.bootstrap == "a:9092,b:9093" && spec.topic == "orders.v1" && spec.stopAtLatest && spec.mode == .atLeastOnce)
        #expect(spec.group == "g" && spec.partitioner == .consistentRandom && spec.progressTopic == "orders.v1.sluice-progress")
        #expect(spec.properties.map(\.0) == ["security.protocol", "sasl.mechanism"])
    }

    @Test func secretsNeverComeFromTheURI() throws {
        #expect(throws: SourceError.self) { try KafkaSpec(uri: "kafka://a:9092/t?sasl.password=hunter2") }
        let file = NSTemporaryDirectory() + "sluice-kafka-secret-\(UUID().uuidString)"
        try "s3cret\n".write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let spec = try KafkaSpec(uri: "kafka://a:9092/t?sasl.password_file=\(file)")
        #expect(spec.properties.first { $0.0 == "sasl.password" }?.1 == "s3cret")
        do {
            _ = try KafkaSpec(uri: "kafka://a:9092/t?sasl.password=hunter2")
        } catch {
            #expect(!"\(error)".contains("hunter2"), "the secret is in the message: \(error)")
        }
    }

    @Test(arguments: ["kafka://a:9092", "kafka:///t", "kafka://a/t", "kafka://a:0/t", "kafka://a:9092/bad topic",
                      "kafka://a:9092/t?stop=earliest", "kafka://a:9092/t?mode=exactly", "kafka://a:9092/t?bootstrap.servers=x:1",
                      "kafka://a:9092/t?partitioner=random", "kafka://a:9092/t?novalue"])
    func refused(_ uri: String) {
        #expect(throws: SourceError.self) { try KafkaSpec(uri: uri) }
    }

    /// librdkafka's consistent_random partitioner is CRC-32 (zlib) of the key modulo P.
    @Test func crc32MatchesZlib() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(CRC32.checksum([UInt8]()) == 0)
    }
}

/// The source's positions against what the broker still holds.
@Suite struct KafkaSourceTests {
    /// A topic keyed by something other than the job's key is refused when the first keyed
    /// message is read; keyed by the job's key (or not keyed), it is read.
    @Test func messagesKeyedByAnotherFieldAreRefused() throws {
        let cluster = try KafkaMockCluster(brokers: 1)
        let job = try JobSpec.parse(yaml: OrderGenerator.revenueJob)  // key: customer (customer.id)
        let order = #"{"order_id":"o-1","customer":{"id":"cust-7"},"amount":1.50,"status":"paid","ts":"2026-01-01T00:00:00Z"}"#
        for (topic, key, refused) in [("by-order", "o-1", true), ("by-customer", "cust-7", false)] {
            try cluster.createTopic(topic, partitions: 1)
            let producer = try KafkaProducer(properties: [("bootstrap.servers", cluster.bootstrapServers)])
            try producer.produce(topic: topic, partition: 0, key: Array(key.utf8), value: Array(order.utf8))
            try producer.flush(timeoutMs: 10_000)
            let source = try SourceFactory(uri: "kafka://\(cluster.bootstrapServers)/\(topic)?stop=latest", job: job).open(partition: 0, position: 0)
            var failure: Error?
            var records = 0
            let deadline = ContinuousClock.now + .seconds(20)
            while failure == nil, records == 0, ContinuousClock.now < deadline {
                do {
                    guard try source.read({ records += $0.count > 0 ? 1 : 0 }) else { break }
                } catch { failure = error }
            }
            if refused {
                #expect("\(failure.map { "\($0)" } ?? "none")".contains("keyed by 'o-1' where the job's key (customer) is 'cust-7'"))
                #expect(records == 0)
            } else {
                #expect(failure == nil && records == 1, "\(String(describing: failure))")
            }
        }
    }

    /// librdkafka's mock keeps about 4 MB per partition and trims older messages, as retention
    /// would: a position below the log's start must stop the partition with a clear error, never
    /// skip ahead.
    @Test func aPositionDeletedByRetentionIsAnErrorNotASkip() throws {
        let cluster = try KafkaMockCluster(brokers: 1)
        try cluster.createTopic("trimmed", partitions: 1)
        let producer = try KafkaProducer(properties: [("bootstrap.servers", cluster.bootstrapServers)])
        let value = Array(repeating: UInt8(ascii: "x"), count: 400)
        for _ in 0..<30_000 { try producer.produce(topic: "trimmed", partition: 0, key: nil, value: value) }
        try producer.flush(timeoutMs: 30_000)
        let consumer = try KafkaConsumer(properties: [("bootstrap.servers", cluster.bootstrapServers)], topic: "trimmed", group: "t")
        try #require(try consumer.watermarks(partition: 0).low > 0, "the mock kept every message: nothing to test")
        let job = try JobSpec.parse(yaml: OrderGenerator.revenueJob)
        let source = try SourceFactory(uri: "kafka://\(cluster.bootstrapServers)/trimmed", job: job).open(partition: 0, position: 0)
        var failure: Error?
        let deadline = ContinuousClock.now + .seconds(20)
        while failure == nil, ContinuousClock.now < deadline {
            do {
                _ = try source.read { _ in Issue.record("read records below the log's start") }
            } catch { failure = error }
        }
        let error = try #require(failure, "no error within 20 s")
        #expect("\(error)".contains("no longer in the topic"), "\(error)")
    }
}
