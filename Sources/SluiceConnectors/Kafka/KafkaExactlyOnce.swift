// Kafka/: the `kafka://` connector. This file is the exactly-once sink's protocol, apart from
// librdkafka (KafkaTransactionalLog.swift) so that the simulator runs the same code against its
// model of Kafka's transaction coordinator (docs/DESIGN.md, "Kafka sink: exactly once").

/// One output message: the row's key bytes and its JSON value (nil: a tombstone).
public struct KafkaOutputMessage: Sendable, Equatable {
    public var key: [UInt8]
    public var value: [UInt8]?

    public init(key: [UInt8], value: [UInt8]?) {
        self.key = key
        self.value = value
    }
}

/// The progress record: written in the same Kafka transaction as a checkpoint's output, it says
/// that Sluice partition `partition`'s checkpoint `seq` (committed under `epoch`) is published.
public struct KafkaSinkProgress: Sendable, Equatable {
    public var partition: Int
    public var seq: Int64
    public var epoch: Int64

    public init(partition: Int, seq: Int64, epoch: Int64) {
        self.partition = partition
        self.seq = seq
        self.epoch = epoch
    }
}

/// The broker's half as one Sluice partition's transactional producer sees it. Two
/// implementations: librdkafka (`LibrdkafkaTransactionalLog`) and the simulator's model.
public protocol KafkaTransactionalLog: AnyObject {
    /// Kafka's `init_transactions` for this partition's stable transactional id: fences every
    /// older producer of the id and aborts the transaction one left open.
    func initTransactions() throws
    func begin() throws
    func send(_ messages: [KafkaOutputMessage]) throws
    func sendProgress(_ progress: KafkaSinkProgress) throws
    func commit() throws
    func abort() throws
    /// The newest progress record of this partition that a read_committed consumer sees.
    func committedProgress() throws -> KafkaSinkProgress?
}

/// Why a publish stopped for good.
public enum KafkaPublishError: Error, CustomStringConvertible, Equatable {
    /// A newer producer took the transactional id: this owner is a zombie and must stop.
    case fenced(String)
    /// The checkpoint store no longer holds output a recovery must publish again.
    case outputMissing(partition: Int, seq: Int64)

    public var description: String {
        switch self {
        case .fenced(let why): "fenced by a newer producer of the same transactional id: \(why)"
        case .outputMissing(let p, let seq):
            "partition \(p): checkpoint \(seq) is committed but neither published to Kafka nor kept in the checkpoint store"
        }
    }
}

/// Sluice's half of exactly-once into Kafka, for one partition under one epoch. The order:
/// 1. the checkpoint commits in the store (fenced by Sluice's epoch), its output with it, in the
///    store's Kafka outbox;
/// 2. `publish`: one Kafka transaction holds that output and the progress record (seq, epoch);
/// 3. before the partition resumes, `recover` fences older producers (`initTransactions`, which
///    aborts what a dead or paused owner left open), reads the committed progress, and publishes
///    again every checkpoint the store committed after it, from the outbox.
/// A zombie cannot add output: its next store commit is refused, and only committed checkpoints
/// are published; its publish of an already committed checkpoint races the new owner's, and
/// Kafka's fencing lets only one transaction of the id commit (after the new owner's
/// `initTransactions`, the old producer's commit fails).
/// One partition's runner uses it at a time (it is handed between threads only with the partition).
public final class KafkaExactlyOnce: @unchecked Sendable {
    public let partition: Int
    public let epoch: Int64
    private let log: any KafkaTransactionalLog
    /// How many times a transaction that must be aborted is tried again before giving up.
    private let attempts: Int

    public init(partition: Int, epoch: Int64, log: any KafkaTransactionalLog, attempts: Int = 5) {
        self.partition = partition
        self.epoch = epoch
        self.log = log
        self.attempts = attempts
    }

    /// Fences older producers and publishes what the store committed and Kafka lacks:
    /// checkpoints after the committed progress up to `committedSeq`, read by `output`
    /// (nil: the store no longer has it). Returns the seqs published.
    @discardableResult
    public func recover(committedSeq: Int64, output: (Int64) throws -> [KafkaOutputMessage]?) throws -> [Int64] {
        try log.initTransactions()
        let published = try log.committedProgress()?.seq ?? 0
        guard committedSeq > published else { return [] }
        var done: [Int64] = []
        for seq in (published + 1)...committedSeq {
            guard let messages = try output(seq) else { throw KafkaPublishError.outputMissing(partition: partition, seq: seq) }
            try publish(messages, seq: seq)
            done.append(seq)
        }
        return done
    }

    /// One Kafka transaction: the checkpoint's output and its progress record. A failure before
    /// the commit aborts the transaction and tries again; fencing stops the partition. A failed
    /// commit is final: its outcome is unknown (the broker may have committed and the answer been
    /// lost), so it is never aborted or retried here; the error stops the partition, and the
    /// recovery that restarts it learns the outcome from the progress record.
    public func publish(_ messages: [KafkaOutputMessage], seq: Int64) throws {
        var attempt = 0
        while true {
            attempt += 1
            do {
                try log.begin()
                try log.send(messages)
                try log.sendProgress(KafkaSinkProgress(partition: partition, seq: seq, epoch: epoch))
            } catch let error as KafkaPublishError {
                throw error
            } catch {
                // The transaction is open and unfinished: abort it (the abort itself may be fenced).
                try log.abort()
                if attempt >= attempts { throw error }
                continue
            }
            try log.commit()
            return
        }
    }
}
