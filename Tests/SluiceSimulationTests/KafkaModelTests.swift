import SluiceConnectors
import SluiceCore
import SluiceSimulation
import Testing

/// The model of Kafka's transaction coordinator on its own: fencing, abort on init, last stable
/// offset and read_committed filtering; and the real `KafkaExactlyOnce` on top of it.
@Suite struct KafkaModelTests {
    static func message(_ key: String, _ value: String) -> KafkaOutputMessage {
        KafkaOutputMessage(key: Array(key.utf8), value: Array(value.utf8))
    }

    static func values(_ records: [KafkaModel.Record]) -> [String] {
        records.compactMap { r -> String? in
            if case .data(let m) = r.payload { return String(decoding: m.value ?? [], as: UTF8.self) }
            return nil
        }
    }

    static func isFenced(_ body: () throws -> Void) -> Bool {
        do {
            try body()
            return false
        } catch KafkaPublishError.fenced {
            return true
        } catch {
            return false
        }
    }

    @Test func initFencesTheOlderProducerAndAbortsItsTransaction() throws {
        let model = KafkaModel(partitions: 1)
        let old = model.initTransactions("t")
        try model.begin(old)
        try model.append(old, partition: 0, .data(Self.message("k", "old")))
        let new = model.initTransactions("t")
        #expect(new.id == old.id && new.epoch == old.epoch + 1)
        #expect(model.openTransactions == 0)
        #expect(model.transactions[0].state == .aborted)
        #expect(Self.isFenced { try model.begin(old) })
        #expect(Self.isFenced { try model.append(old, partition: 0, .data(Self.message("k", "zombie"))) })
        #expect(Self.isFenced { try model.endTransaction(old, commit: true) })
        #expect(Self.isFenced { try model.endTransaction(old, commit: false) })
        try model.begin(new)
        try model.append(new, partition: 0, .data(Self.message("k", "new")))
        try model.endTransaction(new, commit: true)
        #expect(Self.values(model.readCommitted(0)) == ["new"])
        // Another transactional id gets another producer id.
        #expect(model.initTransactions("u").id != new.id)
    }

    @Test func readCommittedStopsAtTheLastStableOffsetAndSkipsAborted() throws {
        let model = KafkaModel(partitions: 2)
        let a = model.initTransactions("a"), b = model.initTransactions("b")
        try model.begin(a)
        try model.append(a, partition: 0, .data(Self.message("x", "a1")))
        try model.begin(b)
        try model.append(b, partition: 0, .data(Self.message("x", "b1")))
        try model.append(b, partition: 1, .data(Self.message("x", "b2")))
        try model.endTransaction(b, commit: true)
        // a is open below b's records in partition 0: nothing there is stable yet.
        #expect(model.lastStableOffset(0) == 0 && model.highWatermark(0) == 3)
        #expect(Self.values(model.readCommitted(0)).isEmpty)
        #expect(Self.values(model.readCommitted(1)) == ["b2"])
        try model.endTransaction(a, commit: false)
        #expect(model.lastStableOffset(0) == model.highWatermark(0))
        #expect(Self.values(model.readCommitted(0)) == ["b1"])
    }

    @Test func theSinkRecoversOverTheModelAndItsZombieIsFenced() throws {
        let model = KafkaModel(partitions: 2)
        let outbox: [Int64: [KafkaOutputMessage]] = [1: [Self.message("a", "1a"), Self.message("b", "1b")],
                                                     2: [Self.message("a", "2a")], 3: [Self.message("c", "3c")]]
        let first = KafkaExactlyOnce(partition: 0, epoch: 1, log: KafkaModelProducer(model: model, transactionalId: "p0", partition: 0))
        #expect(try first.recover(committedSeq: 0) { outbox[$0] } == [])
        try first.publish(outbox[1] ?? [], seq: 1)
        // The store commits 2 and 3; the owner pauses before publishing them; a new owner recovers.
        let second = KafkaExactlyOnce(partition: 0, epoch: 2, log: KafkaModelProducer(model: model, transactionalId: "p0", partition: 0))
        #expect(try second.recover(committedSeq: 3) { outbox[$0] } == [2, 3])
        // The zombie wakes up and publishes 2: fenced, nothing visible twice.
        #expect(throws: KafkaPublishError.self) { try first.publish(outbox[2] ?? [], seq: 2) }
        let all = (0..<model.partitionCount).flatMap { Self.values(model.readCommitted($0)) }.sorted()
        #expect(all == ["1a", "1b", "2a", "3c"])
        let log = KafkaModelProducer(model: model, transactionalId: "p0", partition: 0)
        #expect(try log.committedProgress() == KafkaSinkProgress(partition: 0, seq: 3, epoch: 2))
    }

    /// A commit whose answer is lost is final for `KafkaExactlyOnce.publish`: it neither aborts nor
    /// retries (the outcome is unknown), so the error stops it instead of publishing the checkpoint
    /// again; the checkpoint is visible once.
    @Test func aCommitWhoseAnswerIsLostIsNotUndoneAndNotPublishedTwice() throws {
        let model = KafkaModel(partitions: 1)
        let log = KafkaModelProducer(model: model, transactionalId: "p0", partition: 0, commitAnswerLost: { true })
        let sink = KafkaExactlyOnce(partition: 0, epoch: 1, log: log)
        try sink.recover(committedSeq: 0) { _ in nil }
        #expect(throws: KafkaModelError.commitOutcomeUnknown) { try sink.publish([Self.message("k", "1")], seq: 1) }
        #expect(Self.values(model.readCommitted(0)) == ["1"])
        #expect(model.openTransactions == 0)
    }

    @Test func progressIsNotReadWhileATransactionIsOpenBelowIt() throws {
        let model = KafkaModel(partitions: 1)
        let other = model.initTransactions("p1")
        try model.begin(other)
        try model.append(other, partition: 0, .progress(KafkaSinkProgress(partition: 1, seq: 1, epoch: 1)))
        let log = KafkaModelProducer(model: model, transactionalId: "p0", partition: 0)
        try log.initTransactions()
        #expect(throws: KafkaModelError.self) { try log.committedProgress() }
        try model.endTransaction(other, commit: false)
        #expect(try log.committedProgress() == nil)
    }
}
