import SluiceConnectors
import SluiceCore

/// The process of the worker died inside a call of the Kafka sink (a fault of the simulator):
/// its producer does nothing more, not even the abort `KafkaExactlyOnce` tries on an error.
struct SimCrashed: Error {}

/// The store's outbox could not be read (an outage, or the worker is cut from the store).
struct SimStoreUnreachable: Error, CustomStringConvertible {
    var description: String { "checkpoint store unreachable" }
}

/// A schedule's Kafka sink: the modelled broker, the sink's fault rates, and the incremental
/// check of the read_committed view against the store's chain.
final class KafkaSim {
    struct Key: Hashable {
        var kafkaPartition: Int
        var partition: Int
    }

    let model: KafkaModel
    /// Per fault point of the sink's protocol (per mille, during the fault window).
    var crashPerMille = 0
    var pausePerMille = 0
    /// Per Kafka commit: the commit applies, its answer is lost.
    var lostCommitAnswerPerMille = 0
    var outages = 0
    /// Workers inside the sink's recovery (for the fault points' names).
    var recovering: Set<Int> = []
    /// The read_committed view is checked below this offset of each topic partition.
    var cursor: [Int64]
    /// Per Sluice partition, the newest progress seq in the view.
    var progressSeq: [Int: Int64] = [:]
    /// Per (topic partition, Sluice partition), the newest checkpoint whose output the view holds
    /// there, and how many of its messages.
    var position: [Key: (seq: Int64, index: Int)] = [:]
    var checkedVersion = -1

    init(partitions: Int, plantedBugs: Set<PlantedBug>) {
        model = KafkaModel(partitions: partitions)
        model.plantedBugs = plantedBugs
        cursor = Array(repeating: 0, count: model.partitionCount)
    }
}

extension Simulator {
    static func transactionalId(_ p: Int) -> String { "sluice-sim-p\(p)" }

    /// A checkpoint's output (what the store's outbox keeps with the commit): one message per
    /// offset, keyed so that a checkpoint spans the topic's partitions.
    static func kafkaOutput(_ c: SimCheckpointStore.Commit) -> [KafkaOutputMessage] {
        (c.from..<c.to).map { o in
            KafkaOutputMessage(key: Array("p\(c.partition)k\(o % 5)".utf8), value: Array("p\(c.partition)o\(o)".utf8))
        }
    }

    func planKafkaFaults() {
        guard let kafka else { return }
        kafka.crashPerMille = chance(perMille: 500) ? randomInt(1...25) : 0
        kafka.pausePerMille = chance(perMille: 500) ? randomInt(1...25) : 0
        kafka.lostCommitAnswerPerMille = chance(perMille: 500) ? randomInt(1...50) : 0
        let outages = randomInt(0...2)
        trace("schedule (Kafka sink): per mille of sink steps crash \(kafka.crashPerMille), pause \(kafka.pausePerMille); of commits, answer lost \(kafka.lostCommitAnswerPerMille); \(outages) broker outages")
        for _ in 0..<outages {
            let start = random(0...(config.faultWindowMs - 1))
            schedule(.episode(.kafkaOutage, durationMs: min(random(100...5_000), config.faultWindowMs - start)), at: start)
        }
    }

    // MARK: the worker's side

    /// A fault point of the sink's protocol: the worker may crash here, or pause (and wake up a
    /// zombie: the rest of the schedule runs meanwhile, then the sink's call goes on).
    func kafkaPoint(_ w: Int, _ inc: Int, _ step: String) throws {
        guard let kafka else { return }
        let proc = workers[w]
        guard proc.up, proc.incarnation == inc else { throw SimCrashed() }
        guard inFaultWindow else { return }
        if chance(perMille: kafka.crashPerMille) {
            let restart = random(100...3_000)
            fault("kafka-crash", "\(Self.name(w)) crashes at the sink's step \(step), restarts in \(restart) ms")
            crashWorker(w, restartInMs: restart)
            throw SimCrashed()
        }
        if chance(perMille: kafka.pausePerMille), proc.pausedUntil == nil {
            let pause = random(100...8_000)
            fault("kafka-pause", "\(Self.name(w)) paused \(pause) ms at the sink's step \(step)")
            proc.pausedUntil = now + pause
            schedule(.workerResume(w: w), at: now + pause)
            runLoop { proc.up && proc.incarnation == inc && proc.pausedUntil != nil }
            guard proc.up, proc.incarnation == inc else { throw SimCrashed() }
            trace("\(Self.name(w)): wakes up in the sink's step \(step)")
        }
    }

    private func taskAlive(_ w: Int, _ inc: Int, _ p: Int, _ token: Int) -> Bool {
        let proc = workers[w]
        return proc.up && proc.incarnation == inc && proc.tasks[p]?.token == token
    }

    /// A fresh transactional producer for this lease (the partition's stable transactional id).
    private func makeProducer(_ w: Int, _ inc: Int, _ p: Int) -> KafkaModelProducer? {
        guard let kafka else { return nil }
        let producer = KafkaModelProducer(
            model: kafka.model, transactionalId: Self.transactionalId(p), partition: p,
            point: { [unowned self] step in
                let during = self.kafka?.recovering.contains(w) == true ? "recovery: " : ""
                try self.kafkaPoint(w, inc, "\(Self.name(w))#\(inc) p\(p) \(during)\(step)")
            },
            available: { [unowned self] in (self.kafka?.outages ?? 0) == 0 },
            committed: { [unowned self] producer, number in self.kafkaCommitted(w, inc, p, producer, number) },
            commitAnswerLost: { [unowned self] in
                guard let kafka = self.kafka, self.inFaultWindow, self.chance(perMille: kafka.lostCommitAnswerPerMille) else { return false }
                self.fault("kafka-lost-commit-answer", "the answer to \(Self.name(w))#\(inc) p\(p)'s Kafka commit is lost")
                return true
            })
        producer.plantedBugs = config.plantedBugs
        return producer
    }

    private func kafkaCommitted(_ w: Int, _ inc: Int, _ p: Int, _ producer: KafkaModel.Producer, _ number: Int) {
        guard let kafka else { return }
        let progress = kafka.model.transactions[number].progress.map { "#\($0.seq) e\($0.epoch)" }
        trace("kafka: \(Self.name(w))#\(inc) p\(p) \(producer) committed transaction \(number) (progress \(progress))")
        if let newest = kafka.model.current[producer.transactionalId], newest != producer {
            violate(Invariant.kafkaFencedNeverCommits, "\(Self.name(w))#\(inc) p\(p): \(producer) committed transaction \(number) after \(newest) took the transactional id")
        }
    }

    /// The store's outbox: the output of checkpoint `seq` of `p` (nil: not in the store).
    private func outbox(_ w: Int, _ p: Int, _ seq: Int64) throws -> [KafkaOutputMessage]? {
        guard storeOutages == 0, (cuts[linkKey(w, store: true, up: true)] ?? 0) == 0,
              (cuts[linkKey(w, store: true, up: false)] ?? 0) == 0 else { throw SimStoreUnreachable() }
        guard let commits = store.commits[p], seq >= 1, seq <= Int64(commits.count) else { return nil }
        return Self.kafkaOutput(commits[Int(seq - 1)])
    }

    /// Partition start (after the claim): a producer for the lease and the real sink's recovery.
    /// False if the task does not run on (crashed, fenced, or its claim is retried).
    func kafkaRecover(_ w: Int, _ p: Int, committedSeq: Int64) -> Bool {
        let proc = workers[w]
        let inc = proc.incarnation
        guard let task = proc.tasks[p], let producer = makeProducer(w, inc, p) else { return true }
        let sink = KafkaExactlyOnce(partition: p, epoch: task.lease.epoch, log: producer)
        proc.tasks[p]?.sink = sink
        kafka?.recovering.insert(w)
        defer { kafka?.recovering.remove(w) }
        do {
            let published = try sink.recover(committedSeq: committedSeq) { seq in try self.outbox(w, p, seq) }
            trace("\(Self.name(w)): \(task.lease) recovered the Kafka sink (store at #\(committedSeq); published again \(published))")
        } catch {
            return kafkaStopped(w, inc, p, task.token, error, recovering: true)
        }
        return taskAlive(w, inc, p, task.token)
    }

    /// After the store accepted checkpoint `c`: one Kafka transaction with its output and progress.
    /// False if the task does not run on.
    func kafkaPublish(_ w: Int, _ p: Int, _ c: SimCheckpointStore.Commit) -> Bool {
        let proc = workers[w]
        let inc = proc.incarnation
        guard let task = proc.tasks[p], let sink = task.sink else { return true }
        do {
            try kafkaPoint(w, inc, "\(Self.name(w))#\(inc) p\(p) before publishing #\(c.seq)")
            try sink.publish(Self.kafkaOutput(c), seq: c.seq)
            trace("\(Self.name(w)): \(task.lease) published #\(c.seq)")
            try kafkaPoint(w, inc, "\(Self.name(w))#\(inc) p\(p) after publishing #\(c.seq)")
        } catch {
            return kafkaStopped(w, inc, p, task.token, error, recovering: false)
        }
        return taskAlive(w, inc, p, task.token)
    }

    /// The sink stopped: fenced (a newer producer took the id: the partition is lost), the
    /// process died, or another error (the claim is retried during recovery, else the partition
    /// fails and its next owner's recovery publishes what is missing).
    private func kafkaStopped(_ w: Int, _ inc: Int, _ p: Int, _ token: Int, _ error: any Error, recovering: Bool) -> Bool {
        guard taskAlive(w, inc, p, token), let task = workers[w].tasks[p] else { return false }
        if case KafkaPublishError.fenced(let why) = error {
            workers[w].tasks[p] = nil
            trace("\(Self.name(w)): \(task.lease) fenced in Kafka: \(why)")
            feed(w, .host(.fenced(partition: p, epoch: task.lease.epoch)))
        } else if recovering {
            storeFailed(w, p, reason: "Kafka sink recovery: \(error)")
        } else {
            workers[w].tasks[p] = nil
            trace("\(Self.name(w)): \(task.lease) failed: Kafka publish: \(error)")
            feed(w, .host(.failed(partition: p, epoch: task.lease.epoch, reason: "Kafka publish: \(error)")))
        }
        return false
    }

    // MARK: the checks

    /// The output of checkpoint `seq` of `p` that lands in topic partition `kp` (the oracle).
    private func expectedOutput(_ kp: Int, _ p: Int, _ seq: Int64) -> [KafkaOutputMessage] {
        guard let kafka, seq >= 1, let commits = store.commits[p], seq <= Int64(commits.count) else { return [] }
        return Self.kafkaOutput(commits[Int(seq - 1)]).filter { kafka.model.partition(forKey: $0.key) == kp }
    }

    /// Whether (kp, p)'s view holds checkpoints 1…through completely (and nothing after).
    private func complete(_ kp: Int, _ p: Int, through: Int64) -> Bool {
        guard let kafka else { return true }
        let pos = kafka.position[KafkaSim.Key(kafkaPartition: kp, partition: p)] ?? (0, 0)
        guard pos.seq <= through, pos.index == expectedOutput(kp, p, pos.seq).count else { return false }
        return pos.seq == through || ((pos.seq + 1)...through).allSatisfy { expectedOutput(kp, p, $0).isEmpty }
    }

    /// `kafka-read-committed-exactly-once`, on what became visible since the last check (the view
    /// changes only when a transaction ends; below the last stable offset nothing changes any more).
    func kafkaCheck() {
        guard let kafka, kafka.checkedVersion != kafka.model.version else { return }
        kafka.checkedVersion = kafka.model.version
        let model = kafka.model
        for kp in 0..<model.partitionCount {
            let end = model.lastStableOffset(kp)
            guard end > kafka.cursor[kp] else { continue }
            for r in model.readCommitted(kp, from: kafka.cursor[kp]) {
                guard checkVisible(kp, r) else { return }
            }
            kafka.cursor[kp] = end
        }
    }

    private func checkVisible(_ kp: Int, _ r: KafkaModel.Record) -> Bool {
        guard let kafka else { return true }
        let t = kafka.model.transactions[r.transaction]
        func broken(_ detail: String) -> Bool {
            violate(Invariant.kafkaReadCommittedExactlyOnce, "topic partition \(kp) offset \(r.offset), transaction \(t.number) of \(t.producer): " + detail)
            return false
        }
        guard t.progress.count == 1, let progress = t.progress.first else {
            return broken("a committed transaction with \(t.progress.count) progress records")
        }
        let p = progress.partition, seq = progress.seq
        let stored = store.last(partition: p).seq
        guard seq >= 1, seq <= stored else {
            return broken("p\(p) checkpoint \(seq) is visible to read_committed consumers but the store has committed only up to \(stored)")
        }
        switch r.payload {
        case .progress(let pr):
            let due = (kafka.progressSeq[pr.partition] ?? 0) + 1
            guard pr.seq == due, pr.partition == p else {
                return broken("p\(pr.partition): progress of checkpoint \(pr.seq) where \(due) was due (each checkpoint once, in order)")
            }
            kafka.progressSeq[p] = pr.seq
        case .data(let m):
            let key = KafkaSim.Key(kafkaPartition: kp, partition: p)
            var pos = kafka.position[key] ?? (0, 0)
            guard seq >= pos.seq else { return broken("p\(p): output of checkpoint \(seq) after that of checkpoint \(pos.seq)") }
            if seq > pos.seq {
                guard complete(kp, p, through: seq - 1) else {
                    return broken("p\(p): output of checkpoint \(seq) while that of checkpoints up to \(seq - 1) is incomplete (at #\(pos.seq), \(pos.index) messages)")
                }
                pos = (seq, 0)
            }
            let expected = expectedOutput(kp, p, seq)
            guard pos.index < expected.count, expected[pos.index] == m else {
                return broken("p\(p): \(String(decoding: m.value ?? [], as: UTF8.self)) is not the next message of checkpoint \(seq)'s output (published twice, or not its output)")
            }
            pos.index += 1
            kafka.position[key] = pos
        case .commitMarker, .abortMarker:
            break
        }
        return true
    }

    /// Every committed checkpoint is visible in Kafka and no transaction is open.
    func kafkaDone() -> Bool {
        guard let kafka else { return true }
        guard kafka.model.openTransactions == 0 else { return false }
        for p in 0..<config.partitions where (kafka.progressSeq[p] ?? 0) != store.last(partition: p).seq { return false }
        return true
    }

    func kafkaLag() -> String {
        guard let kafka else { return "" }
        var parts: [String] = []
        for t in kafka.model.transactions where t.state == .open {
            parts.append("transaction \(t.number) of \(t.producer) still open (first offsets \(t.firstOffsets.sorted { $0.key < $1.key }.map { "\($0.key)@\($0.value)" }))")
        }
        for p in 0..<config.partitions where (kafka.progressSeq[p] ?? 0) != store.last(partition: p).seq {
            parts.append("p\(p): published to #\(kafka.progressSeq[p] ?? 0), store at #\(store.last(partition: p).seq)")
        }
        return parts.joined(separator: "; ")
    }

    /// `kafka-output-equals-oracle`: the view holds the output of the store's whole chain.
    func kafkaFinalChecks() {
        guard let kafka else { return }
        for p in 0..<config.partitions {
            let last = store.last(partition: p).seq
            if (kafka.progressSeq[p] ?? 0) != last {
                violate(Invariant.kafkaOutputEqualsOracle, "p\(p): progress published to #\(kafka.progressSeq[p] ?? 0), the store's chain ends at #\(last)")
            }
            for kp in 0..<kafka.model.partitionCount where !complete(kp, p, through: last) {
                violate(Invariant.kafkaOutputEqualsOracle, "p\(p): topic partition \(kp)'s read_committed output is not that of checkpoints 1…\(last)")
            }
        }
    }
}
