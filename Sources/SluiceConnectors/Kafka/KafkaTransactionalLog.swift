import Foundation
import SluiceDrivers

/// `KafkaTransactionalLog` on librdkafka: one transactional producer per (job, sink topic,
/// partition), with a stable transactional id `sluice.<job>.<topic>.<partition>` (never one per
/// checkpoint; the job and topic in it keep two jobs' ids apart). Progress records go to the
/// progress topic's partition `partition % P`, keyed `<job>/<partition>`.
final class LibrdkafkaTransactionalLog: KafkaTransactionalLog {
    let transactionalID: String
    private let spec: KafkaSpec
    private let job: String
    private let partition: Int
    private let producer: KafkaProducer
    private let progressKey: [UInt8]
    private let progressPartitions: Int
    /// This producer handle's name, and its transactions so far: every message carries
    /// `TXID/INSTANCE/N` in the `sluice-txn` header, so that a topic's history can be audited.
    private let instance: String
    private var transactions = 0
    private var header: [UInt8] = []
    private let outcomes: KafkaTransactionOutcomes?
    private let transactionTimeoutMs: Int
    private static let timeoutMs: Int32 = 60_000

    init(spec: KafkaSpec, job: String, partition: Int, transactionTimeoutMs: Int, outcomes: KafkaTransactionOutcomes?) throws {
        self.spec = spec
        self.outcomes = outcomes
        self.transactionTimeoutMs = transactionTimeoutMs
        self.job = job
        self.partition = partition
        transactionalID = "sluice.\(job).\(spec.topic).\(partition)"
        progressKey = Array("\(job)/\(partition)".utf8)
        producer = try KafkaProducer(properties: spec.clientProperties + [
            ("partitioner", "murmur2_random"), ("enable.idempotence", "true"),
            ("transaction.timeout.ms", String(transactionTimeoutMs)),
        ], transactionalID: transactionalID)
        progressPartitions = try producer.partitionCount(topic: spec.progressTopic)
        instance = KafkaTransactionOutcomes.newInstance()
    }

    private var transaction: String { "\(transactionalID)/\(instance)/\(transactions)" }

    func initTransactions() throws {
        try fenced { try producer.initTransactions(timeoutMs: Self.timeoutMs) }
        try outcomes?.locked { append in try append("init \(transactionalID) \(instance)") }
    }

    func begin() throws {
        try fenced { try producer.beginTransaction() }
        transactions += 1
        header = Array(transaction.utf8)
    }

    func send(_ messages: [KafkaOutputMessage]) throws {
        try fenced {
            for message in messages {
                try producer.produce(topic: spec.topic, key: message.key, value: message.value, header: (KafkaTransactionOutcomes.header, header))
            }
        }
    }

    func sendProgress(_ progress: KafkaSinkProgress) throws {
        let value = Array(#"{"job":"\#(job)","partition":\#(progress.partition),"seq":\#(progress.seq),"epoch":\#(progress.epoch)}"#.utf8)
        try fenced {
            try producer.produce(topic: spec.progressTopic, partition: Int32(partition % progressPartitions), key: progressKey, value: value,
                                 header: (KafkaTransactionOutcomes.header, header))
        }
    }

    func commit() throws {
        guard let outcomes else { return try commitTransaction() }
        // Kafka's rule, which the mock lacks: a producer fenced by a newer init cannot commit.
        // Every record is on the broker first; then the decision is logged under the lock, which
        // is held only for file appends (a process stopped while holding it would stall the
        // others). A decision logged before a newer producer's init counts as committed for that
        // producer's reads, as Kafka completes an in-flight commit before InitProducerId returns.
        let transaction = self.transaction
        try fenced { try producer.flush(timeoutMs: Self.timeoutMs) }
        try outcomes.locked { append in
            if outcomes.isFenced(transactionalID, instance: instance) {
                try append("fenced \(transaction)")
                throw KafkaPublishError.fenced("\(transactionalID): a newer producer initialized the id (transaction-outcome log)")
            }
            try append("commit \(transaction)")
        }
        try commitTransaction()
    }

    private func commitTransaction() throws {
        try fenced {
            var attempt = 0
            while true {
                do {
                    return try producer.commitTransaction(timeoutMs: Self.timeoutMs)
                } catch let error as KafkaError where error.isRetriable && !error.requiresAbort && attempt < 5 {
                    attempt += 1  // a commit that timed out may be retried as it is
                }
            }
        }
    }

    func abort() throws {
        try fenced { try producer.abortTransaction(timeoutMs: Self.timeoutMs) }
        let transaction = self.transaction
        try outcomes?.locked { append in try append("abort \(transaction)") }
    }

    /// Reads the progress partition from its start until the read_committed position passes the
    /// partition's high watermark as it is now. Reading only to the last stable offset would not
    /// do: another Sluice partition's open transaction in the same progress partition holds the
    /// LSO below a progress record of ours that has committed, and we would publish it again. So
    /// this waits until every transaction open now has ended (at most `transaction.timeout.ms`).
    func committedProgress() throws -> KafkaSinkProgress? {
        let target = partition % progressPartitions
        let uncommitted = try KafkaConsumer(properties: spec.clientProperties, topic: spec.progressTopic,
                                            group: "sluice-\(job)-progress", readCommitted: false)
        let end = try uncommitted.watermarks(partition: target).high
        guard end > 0 else { return nil }
        let consumer = try KafkaConsumer(properties: spec.clientProperties, topic: spec.progressTopic, group: "sluice-\(job)-progress")
        try consumer.assign(partition: target, offset: 0)
        var newest: KafkaSinkProgress?
        var position: Int64 = 0
        let committed = outcomes?.committed()
        let limit = Duration.milliseconds(transactionTimeoutMs) + .seconds(30)
        let deadline = ContinuousClock.now + limit
        while position < end {
            guard ContinuousClock.now < deadline else {
                throw KafkaError(code: -1, message: "reading progress from \(spec.progressTopic)[\(target)] up to offset \(end) took over \(limit) (a transaction open longer than transaction.timeout.ms?)")
            }
            let result = try consumer.poll(max: 10_000, timeoutMs: 200) { message in
                position = message.offset + 1
                if let committed, !committed.contains(String(decoding: message.header(KafkaTransactionOutcomes.header) ?? [], as: UTF8.self)) {
                    return  // aborted or open, as Kafka's read_committed would hide it
                }
                guard let key = message.key, Array(key) == progressKey, let value = message.value,
                      let object = try? JSONSerialization.jsonObject(with: Data(value)) as? [String: Any],
                      let seq = (object["seq"] as? NSNumber)?.int64Value, let epoch = (object["epoch"] as? NSNumber)?.int64Value
                else { return }
                newest = KafkaSinkProgress(partition: partition, seq: seq, epoch: epoch)
            }
            if let eof = result.endOffset { position = max(position, eof) }
        }
        return newest
    }

    /// librdkafka's fatal errors (a newer producer of the id) become `KafkaPublishError.fenced`.
    private func fenced<T>(_ work: () throws -> T) throws -> T {
        do {
            return try work()
        } catch let error as KafkaError where error.isFatal || error.code == KafkaError.fenced
            || error.code == KafkaError.producerFenced || error.code == KafkaError.invalidProducerEpoch {
            throw KafkaPublishError.fenced("\(transactionalID): \(error.message)")
        }
    }
}
