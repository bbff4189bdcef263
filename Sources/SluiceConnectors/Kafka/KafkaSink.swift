import Foundation
import Logging
import SluiceCore
import SluiceDrivers
import SluiceJob
import SluiceStorage
import Synchronization

/// Window results into a Kafka topic, one message per row (`KafkaRows`), placed by the Java
/// client's murmur2 partitioner. Late events, dead letters and duplicates stay in the checkpoint
/// store's database (tables `<table>_late`, `<table>_dead_letters`, `<table>_duplicates`, as the
/// SQLite and PostgreSQL sinks keep them), committed with the checkpoint.
///
/// - `mode=exactly_once` (the default): `KafkaExactlyOnce`. The checkpoint's messages commit in the
///   store's outbox table `sluice_kafka_outbox` with the checkpoint, then go to Kafka in one
///   transaction with a progress record; recovery republishes what the progress lacks.
/// - `mode=at_least_once`: the messages are produced and flushed before the checkpoint commits; a
///   crash before the commit produces them again.
struct KafkaSink: Sink {
    let spec: KafkaSpec
    let job: JobSpec
    let rows: KafkaRows
    let transactionTimeoutMs: Int
    private let state: KafkaSinkState
    private let logger: Logger
    /// Tests only: Kafka's transaction rules applied over the mock cluster.
    let outcomes: KafkaTransactionOutcomes?

    /// The broker's default cap on `transaction.timeout.ms` (`transaction.max.timeout.ms`).
    static let brokerTimeoutCapMs = 900_000

    init(uri: String, job: JobSpec, logger: Logger, connect: Bool,
         outcomes: KafkaTransactionOutcomes? = KafkaTransactionOutcomes.fromEnvironment()) throws {
        spec = try KafkaSpec(uri: uri)
        self.outcomes = outcomes
        self.job = job
        self.logger = logger
        guard job.kind != .changes || spec.keyColumn != nil else {
            throw SinkError("kafka sink: a job of kind changes keys each change event by a column of its row images: add key=COLUMN to the sink's URI (the source's key column)")
        }
        rows = KafkaRows(job: job, changeKey: spec.keyColumn)
        transactionTimeoutMs = try KafkaSink.transactionTimeout(spec, job: job)
        state = KafkaSinkState()
        guard connect else { return }
        let producer = try KafkaProducer(properties: spec.clientProperties + [("partitioner", "murmur2_random"), ("enable.idempotence", "true")])
        for topic in [spec.topic] + (spec.mode == .exactlyOnce ? [spec.progressTopic] : []) {
            do {
                _ = try producer.partitionCount(topic: topic, timeoutMs: 15_000)
            } catch let error as KafkaError where error.code == KafkaError.unknownTopic {
                throw SinkError("kafka sink: topic '\(topic)' does not exist at \(spec.bootstrap); create it (Sluice creates no topics)\(topic == spec.progressTopic ? ": the exactly-once sink keeps its progress records there (one partition is enough; compacted), or name another with progress_topic=" : "")")
            } catch let error as KafkaError {
                throw SinkError("kafka sink: cannot reach \(spec.bootstrap) (\(error.message))")
            }
        }
        state.atLeastOnce.withLock { $0 = spec.mode == .atLeastOnce ? producer : nil }
    }

    /// `transaction.timeout.ms` (default 60 s) must outlive a transaction: one is open from the
    /// publish of a checkpoint to its commit, retried while the partition holds its lease; and a
    /// broker refuses a timeout above its `transaction.max.timeout.ms` (15 min by default).
    static func transactionTimeout(_ spec: KafkaSpec, job: JobSpec) throws -> Int {
        let text = spec.properties.first { $0.0 == "transaction.timeout.ms" }?.1
        guard let ms = text.map({ Int($0) }) ?? 60_000 else {
            throw SinkError("kafka sink: transaction.timeout.ms=\(text ?? "") is not a number of milliseconds")
        }
        let floor = max(10_000, 2 * Int(job.checkpointIntervalMs))
        guard ms >= floor else {
            throw SinkError("kafka sink: transaction.timeout.ms=\(ms) could expire a live transaction: it must be at least \(floor) ms (10 s, and twice the checkpoint interval of \(job.checkpointIntervalMs) ms); raise it or drop it (default 60000)")
        }
        guard ms <= brokerTimeoutCapMs else {
            throw SinkError("kafka sink: transaction.timeout.ms=\(ms) is above Kafka's default transaction.max.timeout.ms (\(brokerTimeoutCapMs)); the broker would refuse the producer: lower it")
        }
        return ms
    }

    var defaultStatePath: String { "sluice-\(job.name).db" }

    func admit(_ owner: SinkOwner, statePath: String) throws {
        state.statePath.withLock { $0 = statePath }
    }

    // MARK: The run

    func stage(_ output: PartitionOutput, partition: Int, epoch: Int64, seq: Int64) throws -> [String] {
        let messages = rows.messages(output)
        if let producer = state.atLeastOnce.withLock({ $0 }) {
            for message in messages {
                try producer.produce(topic: spec.topic, key: message.key, value: message.value)
            }
            try producer.flush(timeoutMs: Int32(transactionTimeoutMs))
        } else {
            state.pending.withLock { $0[partition] = (seq, messages) }
        }
        return []
    }

    func publish(files: [String], partition: Int, epoch: Int64) throws {
        guard spec.mode == .exactlyOnce else { return }
        guard let (seq, messages) = state.pending.withLock({ $0.removeValue(forKey: partition) }) else { return }
        try publisher(partition: partition, epoch: epoch).publish(messages, seq: seq)
    }

    func recover(partition: Int, last: Checkpoint?) throws {
        throw SinkError("kafka sink: recover needs the owner's epoch")
    }

    func recover(partition: Int, epoch: Int64, last: Checkpoint?) throws {
        guard spec.mode == .exactlyOnce else { return }
        state.pending.withLock { _ = $0.removeValue(forKey: partition) }
        let log = try LibrdkafkaTransactionalLog(spec: spec, job: job.name, partition: partition, transactionTimeoutMs: transactionTimeoutMs, outcomes: outcomes)
        let publisher = KafkaExactlyOnce(partition: partition, epoch: epoch, log: log)
        state.publishers.withLock { $0[partition] = publisher }
        let committed = last?.seq ?? 0
        let outbox = KafkaOutbox(statePath: state.statePath.withLock { $0 } ?? defaultStatePath, logger: logger)
        let republished = try publisher.recover(committedSeq: committed) { seq in try outbox.messages(partition: partition, seq: seq) }
        if !republished.isEmpty {
            logger.info("partition \(partition): published checkpoints \(republished.map(String.init).joined(separator: ", ")) that a previous owner committed but had not published")
        }
    }

    private func publisher(partition: Int, epoch: Int64) throws -> KafkaExactlyOnce {
        if let existing = state.publishers.withLock({ $0[partition] }), existing.epoch == epoch { return existing }
        throw SinkError("kafka sink: partition \(partition) publishes under epoch \(epoch) without a recovery")
    }

    // MARK: CommitWriter: rejected events with the store's own sink; messages in the outbox

    /// The output without its result rows: what the companion table sink writes.
    private func rejected(_ output: PartitionOutput) -> PartitionOutput {
        var copy = output
        copy.rows.removeAll()
        copy.records = []
        return copy
    }

    private func pendingMessages(_ output: PartitionOutput, partition: Int, seq: Int64) -> [KafkaOutputMessage] {
        if let (pendingSeq, messages) = state.pending.withLock({ $0[partition] }), pendingSeq == seq { return messages }
        return rows.messages(output)
    }

    func createTables(in db: SQLiteDatabase) throws {
        try SQLiteSink(path: db.path, job: job).createTables(in: db)
        try db.execute(KafkaOutbox.sqliteDDL)
    }

    func write(_ output: PartitionOutput, partition: Int, seq: Int64, in db: SQLiteDatabase) throws {
        try SQLiteSink(path: db.path, job: job).write(rejected(output), partition: partition, seq: seq, in: db)
        guard spec.mode == .exactlyOnce else { return }
        try KafkaOutbox.write(pendingMessages(output, partition: partition, seq: seq), partition: partition, seq: seq, in: db)
    }

    func discard(partition: Int, after seq: Int64, in db: SQLiteDatabase) throws {
        try SQLiteSink(path: db.path, job: job).discard(partition: partition, after: seq, in: db)
        try db.prepare("DELETE FROM sluice_kafka_outbox WHERE partition = ? AND seq > ?").bind(1, Int64(partition)).bind(2, seq).run()
    }

    func createTables(in pg: PostgresConnection) throws {
        try PostgresSink(url: pg.url, job: job).createTables(in: pg)
        try pg.execute(KafkaOutbox.postgresDDL)
    }

    func write(_ output: PartitionOutput, partition: Int, seq: Int64, in pg: PostgresConnection) throws {
        try PostgresSink(url: pg.url, job: job).write(rejected(output), partition: partition, seq: seq, in: pg)
        guard spec.mode == .exactlyOnce else { return }
        try KafkaOutbox.write(pendingMessages(output, partition: partition, seq: seq), partition: partition, seq: seq, in: pg)
    }

    func discard(partition: Int, after seq: Int64, in pg: PostgresConnection) throws {
        try PostgresSink(url: pg.url, job: job).discard(partition: partition, after: seq, in: pg)
        _ = try pg.execute("DELETE FROM sluice_kafka_outbox WHERE partition = $1 AND seq > $2", [.int(Int64(partition)), .int(seq)])
    }
}

/// What a Kafka sink shares between the partitions of one process.
final class KafkaSinkState: Sendable {
    let statePath = Mutex<String?>(nil)
    /// Each partition's staged checkpoint: its seq and messages, published after the commit.
    let pending = Mutex<[Int: (Int64, [KafkaOutputMessage])]>([:])
    let publishers = Mutex<[Int: KafkaExactlyOnce]>([:])
    let atLeastOnce = Mutex<KafkaProducer?>(nil)
}

/// The store's table of committed, perhaps unpublished, messages: every checkpoint's messages
/// (ordinal 0, 1, …) and a marker row (ordinal -1) that says the checkpoint is there even when it
/// has no messages. A commit deletes its partition's older checkpoints: by then they are published.
struct KafkaOutbox {
    /// The checkpoint store's location (a SQLite path or a postgres:// URL).
    let statePath: String
    let logger: Logger

    static let sqliteDDL = """
        CREATE TABLE IF NOT EXISTS sluice_kafka_outbox(partition INTEGER NOT NULL, seq INTEGER NOT NULL, ordinal INTEGER NOT NULL,
            key BLOB, value BLOB, PRIMARY KEY(partition, seq, ordinal));
        """
    static let postgresDDL = """
        CREATE TABLE IF NOT EXISTS sluice_kafka_outbox(partition integer NOT NULL, seq bigint NOT NULL, ordinal integer NOT NULL,
            key bytea, value bytea, PRIMARY KEY(partition, seq, ordinal));
        """

    static func write(_ messages: [KafkaOutputMessage], partition: Int, seq: Int64, in db: SQLiteDatabase) throws {
        try db.prepare("DELETE FROM sluice_kafka_outbox WHERE partition = ? AND seq < ?").bind(1, Int64(partition)).bind(2, seq).run()
        let insert = try db.prepare("INSERT INTO sluice_kafka_outbox VALUES (?, ?, ?, ?, ?)")
        try insert.bind(1, Int64(partition)).bind(2, seq).bind(3, Int64(-1)).bind(4, nil as String?).bind(5, nil as String?).run()
        for (i, message) in messages.enumerated() {
            insert.reset()
            insert.bind(1, Int64(partition)).bind(2, seq).bind(3, Int64(i)).bind(4, message.key)
            if let value = message.value { insert.bind(5, value) } else { insert.bind(5, nil as String?) }
            try insert.run()
        }
    }

    static func write(_ messages: [KafkaOutputMessage], partition: Int, seq: Int64, in pg: PostgresConnection) throws {
        _ = try pg.execute("DELETE FROM sluice_kafka_outbox WHERE partition = $1 AND seq < $2", [.int(Int64(partition)), .int(seq)])
        _ = try pg.execute("INSERT INTO sluice_kafka_outbox VALUES ($1, $2, -1, NULL, NULL)", [.int(Int64(partition)), .int(seq)])
        for (i, message) in messages.enumerated() {
            _ = try pg.execute("INSERT INTO sluice_kafka_outbox VALUES ($1, $2, $3, $4, $5)", [
                .int(Int64(partition)), .int(seq), .int(Int64(i)), .bytes(message.key), message.value.map { .bytes($0) } ?? .null,
            ])
        }
    }

    /// A checkpoint's messages as the store kept them; nil when the store has no such checkpoint.
    func messages(partition: Int, seq: Int64) throws -> [KafkaOutputMessage]? {
        var found = false
        var messages: [KafkaOutputMessage] = []
        if PostgresURL.isPostgres(statePath) {
            let session = PostgresSession(url: try PostgresURL(statePath), name: "kafka outbox", logger: logger)
            let rows = try session.run { conn, _ in
                try conn.execute("SELECT ordinal, key, value FROM sluice_kafka_outbox WHERE partition = $1 AND seq = $2 ORDER BY ordinal",
                                 [.int(Int64(partition)), .int(seq)])
            }
            for r in 0..<rows.count {
                if try rows.int64(r, 0) < 0 { found = true; continue }
                messages.append(KafkaOutputMessage(key: rows.bytes(r, 1), value: rows.isNull(r, 2) ? nil : rows.bytes(r, 2)))
            }
        } else {
            let db = try SQLiteDatabase(path: statePath)
            let select = try db.prepare("SELECT ordinal, key, value FROM sluice_kafka_outbox WHERE partition = ? AND seq = ? ORDER BY ordinal")
                .bind(1, Int64(partition)).bind(2, seq)
            while try select.step() {
                if select.int64(0) < 0 { found = true; continue }
                messages.append(KafkaOutputMessage(key: select.blob(1), value: select.isNull(2) ? nil : select.blob(2)))
            }
        }
        return found ? messages : nil
    }
}
