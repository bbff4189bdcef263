import Foundation
import Logging
import SluiceCore
import SluiceDrivers
import SluiceJob
import SluiceStorage

/// `kafka://HOST:PORT[,…]/TOPIC[?…]` (KafkaSpec): a topic's partitions as a source
/// (KafkaSource.swift), and a sink of window results (KafkaSink.swift), exactly once by default
/// (KafkaExactlyOnce.swift on KafkaTransactionalLog.swift). The checkpoint store defaults to
/// `sluice-<job>.db` in the working directory.
struct KafkaConnector: SourceConnector, SinkConnector {
    var usage: String { KafkaSpec.usage }

    func claims(_ uri: String) -> Bool { KafkaSpec.claims(uri) }

    /// A compacted topic: a message is its key's row, a tombstone its delete (in and out).
    var readsViewChangelog: Bool { true }
    var keepsViews: Bool { true }

    func openSource(uri: String, options: SourceOptions) throws -> any SourcePartitions {
        try KafkaSourcePartitions(spec: KafkaSpec(uri: uri), options: options)
    }

    /// The topic: the bootstrap list names brokers, which may change while the topic stays.
    func inputIdentity(_ uri: String) -> String {
        (try? KafkaSpec(uri: uri)).map { "kafka:\($0.topic)" } ?? uri
    }

    func openSink(uri: String, job: JobSpec, logger: Logger) throws -> any Sink {
        try KafkaSink(uri: uri, job: job, logger: logger, connect: true)
    }

    func validateSink(uri: String, job: JobSpec) throws {
        do {
            _ = try KafkaSink(uri: uri, job: job, logger: .silent, connect: false)
        } catch let error as SourceError {
            throw SinkError(error.description)
        }
    }

    /// The topic as a read_committed consumer sees it, from its start to its end; rejected
    /// events from the checkpoint store (`statePath`, default `sluice-<job>.db`).
    func readBack(uri: String, job: JobSpec, statePath: String?) throws -> SinkContents {
        let spec = try KafkaSpec(uri: uri)
        let rows = KafkaRows(job: job)
        var contents = SinkContents()
        contents.rows = try KafkaTopicReader.read(spec: spec) { try rows.rowText($0) }
        let store = statePath ?? "sluice-\(job.name).db"
        if PostgresURL.isPostgres(store) {
            let rejected = try ConnectorRegistry.sink(store).readBack(uri: store, job: job, statePath: nil)
            contents.late = rejected.late
            contents.deadLetters = rejected.deadLetters
            contents.duplicates = rejected.duplicates
        } else if FileManager.default.fileExists(atPath: store) {
            let rejected = try SQLiteSink.readBack(path: store, job: job)
            contents.late = rejected.late
            contents.deadLetters = rejected.deadLetters
            contents.duplicates = rejected.duplicates
        }
        return contents
    }

    func sinkIdentity(_ uri: String) -> String {
        (try? KafkaSpec(uri: uri)).map { "kafka:\($0.topic)" } ?? uri
    }
}

/// Every message of a topic, partition by partition, from the start to the read_committed end.
public enum KafkaTopicReader {
    /// With `outcomes`, only messages of transactions it logged committed (Kafka's read_committed
    /// view, which the mock cluster does not give).
    public static func read<T>(spec: KafkaSpec, outcomes: KafkaTransactionOutcomes? = KafkaTransactionOutcomes.fromEnvironment(),
                               timeout: Duration = .seconds(120),
                               _ transform: (UnsafeRawBufferPointer) throws -> T) throws -> [T] {
        try readMessages(spec: spec, outcomes: outcomes, timeout: timeout) {
            try transform($0.value ?? UnsafeRawBufferPointer(start: nil, count: 0))
        }
    }

    /// The same, handing over whole messages (key, value, headers).
    public static func readMessages<T>(spec: KafkaSpec, outcomes: KafkaTransactionOutcomes? = KafkaTransactionOutcomes.fromEnvironment(),
                                       timeout: Duration = .seconds(120),
                                       _ transform: (KafkaMessage) throws -> T) throws -> [T] {
        let committed = outcomes?.committed()
        let partitions = try KafkaSourcePartitions.partitionCount(spec)
        var out: [T] = []
        let deadline = ContinuousClock.now + timeout
        for p in 0..<partitions {
            let consumer = try KafkaConsumer(properties: spec.clientProperties, topic: spec.topic, group: "sluice-reader")
            let end = try consumer.watermarks(partition: p).high
            guard end > 0 else { continue }
            try consumer.assign(partition: p, offset: 0)
            var position: Int64 = 0
            var failure: Error?
            while position < end, failure == nil {
                guard ContinuousClock.now < deadline else { throw SinkError("reading \(spec.topic)[\(p)] took longer than \(timeout)") }
                let result = try consumer.poll(max: 10_000, timeoutMs: 200) { message in
                    position = message.offset + 1
                    guard failure == nil else { return }
                    if let committed, !committed.contains(String(decoding: message.header(KafkaTransactionOutcomes.header) ?? [], as: UTF8.self)) {
                        return
                    }
                    do {
                        out.append(try transform(message))
                    } catch { failure = error }
                }
                if let eof = result.endOffset { position = max(position, eof) }
            }
            if let failure { throw failure }
        }
        return out
    }
}
