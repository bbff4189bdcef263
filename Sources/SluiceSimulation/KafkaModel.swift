// The broker's half of exactly-once into Kafka, modelled: librdkafka's mock cluster implements
// neither transactional isolation nor fencing (issue 14), so the simulator proves the sink's
// protocol (`KafkaExactlyOnce`, the real code) against this model of Kafka's transaction
// coordinator and of one topic. Pure and deterministic, like the rest of the module.

import SluiceConnectors
import SluiceCore

/// Errors of the model that are not a fencing (a fencing is `KafkaPublishError.fenced`, which the
/// sink's protocol treats as final).
public enum KafkaModelError: Error, Equatable, CustomStringConvertible {
    /// begin/send/commit/abort by a producer that never called `initTransactions`.
    case notInitialized
    /// begin while the producer's transaction is open.
    case transactionInProgress
    /// send/commit/abort without an open transaction.
    case noTransaction
    /// A read_committed read of progress while a transaction is open below the high watermark
    /// of the progress partition: what is above the last stable offset is not known yet; retry.
    case notStable(partition: Int, lastStable: Int64, highWatermark: Int64)
    /// The broker does not answer (a fault of the simulator).
    case brokerUnavailable
    /// The commit's answer was lost: the transaction may or may not have committed.
    case commitOutcomeUnknown

    public var description: String {
        switch self {
        case .notInitialized: "the producer did not call initTransactions"
        case .transactionInProgress: "a transaction of this producer is already open"
        case .noTransaction: "no open transaction"
        case let .notStable(p, lso, hw): "partition \(p): last stable offset \(lso) below the high watermark \(hw)"
        case .brokerUnavailable: "broker unavailable"
        case .commitOutcomeUnknown: "the commit's answer was lost"
        }
    }
}

/// Kafka's transaction coordinator and one topic of `partitionCount` partitions, as the
/// exactly-once sink relies on them:
/// - per transactional id, a producer id and a producer epoch; `initTransactions` bumps the epoch
///   (a new id gets a new producer id at epoch 0), which fences every older producer of the id,
///   and aborts the transaction an older producer of the id left open;
/// - a fenced producer's begin, send, commit and abort fail with `KafkaPublishError.fenced`;
/// - every record carries its producer and transaction; commit and abort write a marker to each
///   partition the transaction wrote;
/// - the last stable offset of a partition is the first offset of its earliest open transaction
///   (the high watermark if none); a read_committed reader sees the records of committed
///   transactions below it, never those of aborted or open ones.
/// An `EndTxn` for a transaction that already ended fails (`noTransaction`): an abort after a
/// commit whose answer was lost does not undo it (Kafka answers INVALID_TXN_STATE).
/// Not modelled: transaction timeouts, replication and leader changes, idempotent-produce
/// sequence numbers, consumer groups.
public final class KafkaModel {
    /// A producer session: one transactional id under one producer id and epoch.
    public struct Producer: Sendable, Hashable, CustomStringConvertible {
        public var transactionalId: String
        public var id: Int64
        public var epoch: Int64
        public var description: String { "\(transactionalId)(pid \(id), epoch \(epoch))" }
    }

    public enum Payload: Sendable, Equatable {
        case data(KafkaOutputMessage)
        case progress(KafkaSinkProgress)
        case commitMarker
        case abortMarker
    }

    public struct Record: Sendable {
        public var offset: Int64
        public var producer: Producer
        /// The transaction's number (index in `transactions`).
        public var transaction: Int
        public var payload: Payload
    }

    public enum State: Sendable, Equatable { case open, committed, aborted }

    public struct Transaction: Sendable {
        public var number: Int
        public var producer: Producer
        public var state: State = .open
        /// The first offset the transaction wrote in each partition it touched.
        public var firstOffsets: [Int: Int64] = [:]
        /// The progress records it carries.
        public var progress: [KafkaSinkProgress] = []
    }

    public let partitionCount: Int
    public private(set) var logs: [[Record]]
    public private(set) var transactions: [Transaction] = []
    /// The newest producer of each transactional id.
    public private(set) var current: [String: Producer] = [:]
    private var openByProducer: [Producer: Int] = [:]
    private var nextProducerId: Int64 = 1_000
    /// Grows whenever a transaction ends (the only moment the read_committed view changes).
    public private(set) var version = 0
    public var plantedBugs: Set<PlantedBug> = []

    public init(partitions: Int) {
        partitionCount = max(1, partitions)
        logs = Array(repeating: [], count: max(1, partitions))
    }

    public var openTransactions: Int { openByProducer.count }

    /// The partition of a key (FNV-1a; any fixed function serves the model).
    public func partition(forKey key: [UInt8]) -> Int {
        var h: UInt32 = 2_166_136_261
        for b in key { h = (h ^ UInt32(b)) &* 16_777_619 }
        return Int(h % UInt32(partitionCount))
    }

    /// Where the progress records of a Sluice partition go.
    public func progressPartition(_ sluicePartition: Int) -> Int { sluicePartition % partitionCount }

    // MARK: the coordinator

    /// `InitProducerId`: the id's next producer session; older sessions are fenced and a
    /// transaction one of them left open is aborted.
    public func initTransactions(_ transactionalId: String) -> Producer {
        let next: Producer
        if let old = current[transactionalId] {
            next = Producer(transactionalId: transactionalId, id: old.id, epoch: old.epoch + 1)
        } else {
            next = Producer(transactionalId: transactionalId, id: nextProducerId, epoch: 0)
            nextProducerId += 1
        }
        let left = openByProducer.filter { $0.key.transactionalId == transactionalId }.map(\.value).sorted()
        for number in left { end(number, commit: false) }
        current[transactionalId] = next
        return next
    }

    /// Whether a newer producer of the same id took over.
    public func isFenced(_ p: Producer) -> Bool {
        if plantedBugs.armed(.kafkaModelNoFencing) { return false }
        return current[p.transactionalId] != p
    }

    private func checkNotFenced(_ p: Producer) throws {
        if isFenced(p) {
            throw KafkaPublishError.fenced("\(p) is older than \(current[p.transactionalId]?.description ?? "none")")
        }
    }

    public func begin(_ p: Producer) throws {
        try checkNotFenced(p)
        guard openByProducer[p] == nil else { throw KafkaModelError.transactionInProgress }
        let number = transactions.count
        transactions.append(Transaction(number: number, producer: p))
        openByProducer[p] = number
    }

    /// Appends one record of the producer's open transaction to `partition`.
    public func append(_ p: Producer, partition: Int, _ payload: Payload) throws {
        try checkNotFenced(p)
        guard let number = openByProducer[p] else { throw KafkaModelError.noTransaction }
        let kp = min(max(0, partition), partitionCount - 1)
        let offset = Int64(logs[kp].count)
        logs[kp].append(Record(offset: offset, producer: p, transaction: number, payload: payload))
        if transactions[number].firstOffsets[kp] == nil { transactions[number].firstOffsets[kp] = offset }
        if case .progress(let progress) = payload { transactions[number].progress.append(progress) }
    }

    /// `EndTxn`: commits or aborts the producer's open transaction; returns its number.
    @discardableResult
    public func endTransaction(_ p: Producer, commit: Bool) throws -> Int {
        try checkNotFenced(p)
        guard let number = openByProducer[p] else { throw KafkaModelError.noTransaction }
        end(number, commit: commit)
        return number
    }

    private func end(_ number: Int, commit: Bool) {
        let t = transactions[number]
        for kp in t.firstOffsets.keys.sorted() {
            logs[kp].append(Record(offset: Int64(logs[kp].count), producer: t.producer, transaction: number,
                                   payload: commit ? .commitMarker : .abortMarker))
        }
        transactions[number].state = commit ? .committed : .aborted
        openByProducer[t.producer] = nil
        version += 1
    }

    // MARK: readers

    public func highWatermark(_ kp: Int) -> Int64 { Int64(logs[kp].count) }

    /// The first offset of the earliest open transaction in `kp`, or the high watermark.
    public func lastStableOffset(_ kp: Int) -> Int64 {
        var lso = highWatermark(kp)
        for number in openByProducer.values {
            if let first = transactions[number].firstOffsets[kp] { lso = min(lso, first) }
        }
        return lso
    }

    /// What a read_committed consumer of `kp` reads from `offset` on: the data and progress
    /// records of committed transactions below the last stable offset.
    public func readCommitted(_ kp: Int, from offset: Int64 = 0) -> [Record] {
        let end = lastStableOffset(kp)
        guard offset < end else { return [] }
        var out: [Record] = []
        for r in logs[kp][Int(max(0, offset))..<Int(end)] where transactions[r.transaction].state == .committed {
            switch r.payload {
            case .data, .progress: out.append(r)
            case .commitMarker, .abortMarker: break
            }
        }
        return out
    }
}

/// One transactional producer of the model: the `KafkaTransactionalLog` under the real
/// `KafkaExactlyOnce` in the simulator. `point` runs before every operation (the simulator
/// crashes or pauses the worker there); `available` says whether the broker answers.
public final class KafkaModelProducer: KafkaTransactionalLog {
    public let model: KafkaModel
    public let transactionalId: String
    public let partition: Int
    public private(set) var producer: KafkaModel.Producer?
    private let point: (String) throws -> Void
    private let available: () -> Bool
    /// Called after each commit the model accepted, with the producer that committed.
    private let committed: (KafkaModel.Producer, Int) -> Void
    /// Whether the answer to a commit that the model applied is lost (a fault of the simulator).
    private let commitAnswerLost: () -> Bool
    public var plantedBugs: Set<PlantedBug> = []

    public init(model: KafkaModel, transactionalId: String, partition: Int,
                point: @escaping (String) throws -> Void = { _ in }, available: @escaping () -> Bool = { true },
                committed: @escaping (KafkaModel.Producer, Int) -> Void = { _, _ in },
                commitAnswerLost: @escaping () -> Bool = { false }) {
        self.model = model
        self.transactionalId = transactionalId
        self.partition = partition
        self.point = point
        self.available = available
        self.committed = committed
        self.commitAnswerLost = commitAnswerLost
    }

    private func reach(_ step: String) throws {
        try point(step)
        guard available() else { throw KafkaModelError.brokerUnavailable }
    }

    private func session() throws -> KafkaModel.Producer {
        guard let producer else { throw KafkaModelError.notInitialized }
        return producer
    }

    public func initTransactions() throws {
        try reach("init")
        if plantedBugs.armed(.kafkaSkipRecoverInit), let existing = model.current[transactionalId] {
            // The planted bug: the id already has a producer session, so recovery skips
            // initTransactions and goes on with it: nothing is fenced, nothing left open aborted.
            producer = existing
            return
        }
        producer = model.initTransactions(transactionalId)
    }

    public func begin() throws {
        try point("begin")
        try model.begin(try session())
    }

    public func send(_ messages: [KafkaOutputMessage]) throws {
        for (i, m) in messages.enumerated() {
            try reach("send \(i + 1)/\(messages.count)")
            try model.append(try session(), partition: model.partition(forKey: m.key), .data(m))
        }
    }

    public func sendProgress(_ progress: KafkaSinkProgress) throws {
        try reach("send progress")
        try model.append(try session(), partition: model.progressPartition(progress.partition), .progress(progress))
    }

    public func commit() throws {
        try reach("commit")
        let p = try session()
        let number = try model.endTransaction(p, commit: true)
        committed(p, number)
        if commitAnswerLost() { throw KafkaModelError.commitOutcomeUnknown }
    }

    public func abort() throws {
        try reach("abort")
        try model.endTransaction(try session(), commit: false)
    }

    /// The newest progress record of this partition in the read_committed view of its progress
    /// partition. It waits (throws `notStable`, to be retried) while a transaction is open below
    /// the high watermark: a committed progress record above the last stable offset would be
    /// missed, and its checkpoint published twice.
    public func committedProgress() throws -> KafkaSinkProgress? {
        try reach("read progress")
        let kp = model.progressPartition(partition)
        let lso = model.lastStableOffset(kp), hw = model.highWatermark(kp)
        if lso < hw && !plantedBugs.armed(.kafkaProgressBelowLSO) {
            throw KafkaModelError.notStable(partition: kp, lastStable: lso, highWatermark: hw)
        }
        var newest: KafkaSinkProgress?
        for r in model.readCommitted(kp) {
            if case .progress(let p) = r.payload, p.partition == partition { newest = p }
        }
        return newest
    }
}
