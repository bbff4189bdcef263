import Foundation

/// `sluice kafka check`: what a Kafka-compatible cluster guarantees of transactions, as seen by a
/// read_committed consumer. Sluice's exactly-once sink relies on the broker for three things:
/// isolation (aborted and open transactions are invisible to read_committed), the abort of a
/// transaction left open when a new producer with the same transactional id calls
/// `init_transactions`, and fencing of the older producer. Each case writes to its own partition
/// (when the topic has enough) with values tagged by a per-run id, so runs never see each other.
public struct KafkaClusterCheck: Sendable {
    public struct Options: Sendable {
        public var bootstrap: String
        /// Must exist: the check creates no topics (the driver has no admin API).
        public var topic: String
        /// Extra librdkafka properties (security, SASL, …), applied after the check's own defaults.
        public var properties: [(String, String)]
        /// Every librdkafka call with a timeout (metadata, init, commit, abort, flush).
        public var operationTimeoutMs: Int32 = 15_000
        /// How long a read waits for records that should become visible.
        public var readTimeout: Duration = .seconds(10)

        public init(bootstrap: String, topic: String, properties: [(String, String)] = []) {
            self.bootstrap = bootstrap
            self.topic = topic
            self.properties = properties
        }
    }

    /// The check could not start (bad property, unreachable bootstrap, missing topic): exit 2.
    public struct SetupError: Error, CustomStringConvertible {
        public var description: String
    }

    public struct Outcome: Sendable {
        public var id: String
        public var passed: Bool
        public var detail: String
    }

    /// What Sluice relies on, judged from one or more outcomes.
    public struct Guarantee: Sendable {
        public var name: String
        public var present: Bool
        /// What its absence means for Sluice.
        public var consequence: String
    }

    public struct Report: Sendable {
        public var bootstrap: String
        public var topic: String
        public var runID: String
        public var outcomes: [Outcome]
        public var guarantees: [Guarantee]
        public var passed: Bool { outcomes.allSatisfy(\.passed) }
        /// 0 when every guarantee holds, 1 when any is missing.
        public var exitCode: Int32 { passed ? 0 : 1 }

        /// The plain text `sluice kafka check` prints.
        public var lines: [String] {
            var lines = ["kafka check: bootstrap \(bootstrap), topic \(topic), run \(runID)"]
            for o in outcomes { lines.append("\(o.passed ? "PASS" : "FAIL")  \(o.id): \(o.detail)") }
            let passed = outcomes.filter(\.passed).count
            lines.append("summary: \(passed) of \(outcomes.count) checks passed")
            for g in guarantees {
                lines.append(g.present ? "\(g.name): PRESENT" : "\(g.name): MISSING — \(g.consequence)")
            }
            lines.append(self.passed
                ? "verdict: PASS — this cluster provides what Sluice's exactly-once Kafka sink relies on"
                : "verdict: FAIL — Sluice's exactly-once Kafka sink cannot be trusted on this cluster (mode=at_least_once can)")
            return lines
        }
    }

    public let options: Options
    public let runID: String

    public init(options: Options, runID: String? = nil) {
        self.options = options
        // Unique transactional ids per run: a rerun never fences or is fenced by an earlier one.
        self.runID = runID ?? String(UInt64.random(in: 0...UInt64.max), radix: 16)
    }

    /// Runs the four cases in order. Throws `SetupError` only when nothing could be checked.
    public func run() throws -> Report {
        let partitions = try setUp()
        var outcomes: [Outcome] = []
        outcomes += committedRoundTrip(partition: 0 % partitions)
        outcomes += abortedTransaction(partition: 1 % partitions)
        outcomes += abandonedTransaction(partition: 2 % partitions)
        outcomes += zombie(partition: 3 % partitions)
        func holds(_ ids: String...) -> Bool { ids.allSatisfy { id in outcomes.contains { $0.id == id && $0.passed } } }
        let guarantees = [
            Guarantee(name: "transactions", present: holds("committed-visible"),
                      consequence: "a committed transaction did not reach a read_committed consumer; Sluice's exactly-once sink cannot work on this cluster"),
            Guarantee(name: "read_committed isolation", present: holds("aborted-invisible", "open-invisible"),
                      consequence: "aborted and open transactions are visible; Sluice's exactly-once sink cannot be trusted on this cluster"),
            Guarantee(name: "abort on takeover", present: holds("takeover-aborts-open"),
                      consequence: "init_transactions does not abort a transaction a killed producer left open; after a worker is killed its partial output stays visible or stalls read_committed consumers"),
            Guarantee(name: "zombie fencing", present: holds("zombie-fenced", "zombie-invisible"),
                      consequence: "a producer whose transactional id was taken over can still commit; a zombie Sluice worker's output could reach read_committed consumers twice"),
        ]
        return Report(bootstrap: options.bootstrap, topic: options.topic, runID: runID, outcomes: outcomes, guarantees: guarantees)
    }

    // MARK: Cases

    /// (a) A committed transaction is visible to read_committed.
    private func committedRoundTrip(partition: Int) -> [Outcome] {
        let tag = "committed"
        do {
            let start = try highWatermark(partition)
            let producer = try transactionalProducer("a")
            try producer.initTransactions(timeoutMs: options.operationTimeoutMs)
            try producer.beginTransaction()
            try produce(producer, tag, count: 3, partition: partition)
            try producer.commitTransaction(timeoutMs: options.operationTimeoutMs)
            let seen = try read(partition, from: start, readCommitted: true) { $0.count(tag) >= 3 }
            return [Outcome(id: "committed-visible", passed: seen.count(tag) == 3,
                            detail: "\(seen.count(tag)) of 3 records of a committed transaction visible to read_committed")]
        } catch {
            return [Outcome(id: "committed-visible", passed: false, detail: "the transactional round trip failed: \(error)")]
        }
    }

    /// (b) An aborted transaction is invisible to read_committed, though its records are in the log.
    private func abortedTransaction(partition: Int) -> [Outcome] {
        let tag = "aborted", post = "aborted-post"
        do {
            let start = try highWatermark(partition)
            let producer = try transactionalProducer("b")
            try producer.initTransactions(timeoutMs: options.operationTimeoutMs)
            try producer.beginTransaction()
            try produce(producer, tag, count: 3, partition: partition)
            try producer.flush(timeoutMs: options.operationTimeoutMs)
            try producer.abortTransaction(timeoutMs: options.operationTimeoutMs)
            // A committed record after it: once it is visible, everything before it that ever will be is too.
            try producer.beginTransaction()
            try produce(producer, post, count: 1, partition: partition)
            try producer.commitTransaction(timeoutMs: options.operationTimeoutMs)
            let raw = try read(partition, from: start, readCommitted: false) { $0.count(post) >= 1 }
            let seen = try read(partition, from: start, readCommitted: true) { $0.count(post) >= 1 }
            let passed: Bool, detail: String
            if raw.count(tag) < 3 {
                (passed, detail) = (false, "inconclusive: only \(raw.count(tag)) of the 3 aborted records reached the log")
            } else if seen.count(post) < 1 {
                (passed, detail) = (false, "a transaction committed after the aborted one never became visible to read_committed")
            } else {
                passed = seen.count(tag) == 0
                detail = "\(seen.count(tag)) of 3 records of an aborted transaction visible to read_committed"
            }
            return [Outcome(id: "aborted-invisible", passed: passed, detail: detail)]
        } catch {
            return [Outcome(id: "aborted-invisible", passed: false, detail: "could not run: \(error)")]
        }
    }

    /// (c) A producer begins, produces, flushes and is abandoned (as if killed): its open
    /// transaction is invisible; a new producer with the same id aborts it on `init_transactions`.
    private func abandonedTransaction(partition: Int) -> [Outcome] {
        let tag = "open", post = "open-post"
        var outcomes: [Outcome] = []
        do {
            let start = try highWatermark(partition)
            let abandoned = try transactionalProducer("c")
            // Kept alive and never used again until the end, like a hung or killed process.
            defer { withExtendedLifetime(abandoned) {} }
            try abandoned.initTransactions(timeoutMs: options.operationTimeoutMs)
            try abandoned.beginTransaction()
            try produce(abandoned, tag, count: 3, partition: partition)
            try abandoned.flush(timeoutMs: options.operationTimeoutMs)
            let raw = try read(partition, from: start, readCommitted: false) { $0.count(tag) >= 3 }
            if raw.count(tag) < 3 {
                outcomes.append(Outcome(id: "open-invisible", passed: false,
                                        detail: "inconclusive: only \(raw.count(tag)) of the 3 open records reached the log"))
            } else {
                // Read to the end a read_committed consumer is shown (the last stable offset).
                let seen = try read(partition, from: start, readCommitted: true, stopAtEnd: true) { _ in false }
                outcomes.append(Outcome(id: "open-invisible", passed: seen.count(tag) == 0,
                                        detail: "\(seen.count(tag)) of 3 records of an open transaction visible to read_committed"))
            }
            let successor = try transactionalProducer("c")
            try successor.initTransactions(timeoutMs: options.operationTimeoutMs)
            try successor.beginTransaction()
            try produce(successor, post, count: 1, partition: partition)
            try successor.commitTransaction(timeoutMs: options.operationTimeoutMs)
            let after = try read(partition, from: start, readCommitted: true) { $0.count(post) >= 1 }
            if after.count(post) < 1 {
                outcomes.append(Outcome(id: "takeover-aborts-open", passed: false,
                                        detail: "after init_transactions of a new producer with the same id, read_committed consumers are still stalled behind the old open transaction"))
            } else {
                outcomes.append(Outcome(id: "takeover-aborts-open", passed: after.count(tag) == 0,
                                        detail: "after init_transactions of a new producer with the same id, \(after.count(tag)) of the 3 open records visible to read_committed"))
            }
        } catch {
            for id in ["open-invisible", "takeover-aborts-open"] where !outcomes.contains(where: { $0.id == id }) {
                outcomes.append(Outcome(id: id, passed: false, detail: "could not run: \(error)"))
            }
        }
        return outcomes
    }

    /// (d) Producer A begins and produces; B (same id) inits. A's commit must fail as fenced and
    /// A's records must stay invisible.
    private func zombie(partition: Int) -> [Outcome] {
        let tag = "zombie", post = "zombie-post"
        var outcomes: [Outcome] = []
        do {
            let start = try highWatermark(partition)
            let zombie = try transactionalProducer("d")
            try zombie.initTransactions(timeoutMs: options.operationTimeoutMs)
            try zombie.beginTransaction()
            try produce(zombie, tag, count: 3, partition: partition)
            try zombie.flush(timeoutMs: options.operationTimeoutMs)
            let successor = try transactionalProducer("d")
            try successor.initTransactions(timeoutMs: options.operationTimeoutMs)
            do {
                try zombie.commitTransaction(timeoutMs: options.operationTimeoutMs)
                outcomes.append(Outcome(id: "zombie-fenced", passed: false,
                                        detail: "the old producer committed after a new producer with its transactional id called init_transactions"))
            } catch let error as KafkaError {
                let fenced = [KafkaError.fenced, KafkaError.producerFenced, KafkaError.invalidProducerEpoch].contains(error.code) || error.isFatal
                outcomes.append(Outcome(id: "zombie-fenced", passed: fenced,
                                        detail: fenced ? "the old producer's commit failed as fenced (\(error))"
                                                       : "the old producer's commit failed, but not as fenced: \(error)"))
            }
            try successor.beginTransaction()
            try produce(successor, post, count: 1, partition: partition)
            try successor.commitTransaction(timeoutMs: options.operationTimeoutMs)
            let seen = try read(partition, from: start, readCommitted: true) { $0.count(post) >= 1 }
            if seen.count(post) < 1 {
                outcomes.append(Outcome(id: "zombie-invisible", passed: false,
                                        detail: "the new producer's committed record never became visible to read_committed"))
            } else {
                outcomes.append(Outcome(id: "zombie-invisible", passed: seen.count(tag) == 0,
                                        detail: "\(seen.count(tag)) of 3 records of the fenced producer visible to read_committed"))
            }
        } catch {
            for id in ["zombie-fenced", "zombie-invisible"] where !outcomes.contains(where: { $0.id == id }) {
                outcomes.append(Outcome(id: id, passed: false, detail: "could not run: \(error)"))
            }
        }
        return outcomes
    }

    // MARK: Plumbing

    private var baseProperties: [(String, String)] {
        // Quiet by default (the report says what failed); a user's `log_level` wins.
        [("bootstrap.servers", options.bootstrap), ("log_level", "2"), ("socket.connection.setup.timeout.ms", "5000")]
            + options.properties
    }

    /// The topic's partition count; a clear `SetupError` for a bad property, an unreachable
    /// bootstrap list or a missing topic.
    private func setUp() throws -> Int {
        let consumer: KafkaConsumer
        do {
            consumer = try KafkaConsumer(properties: baseProperties, topic: options.topic, group: "sluice-check-\(runID)", readCommitted: false)
        } catch {
            throw SetupError(description: "\(error)")
        }
        do {
            return try consumer.partitionCount(timeoutMs: options.operationTimeoutMs)
        } catch let error as KafkaError where error.code == KafkaError.unknownTopic {
            throw SetupError(description: "topic '\(options.topic)' does not exist at \(options.bootstrap): create it first "
                             + "(for example `kafka-topics.sh --create --topic \(options.topic) --partitions 4` or `rpk topic create \(options.topic) -p 4`), or pass --topic")
        } catch {
            throw SetupError(description: "cannot reach Kafka at bootstrap \(options.bootstrap): \(error)")
        }
    }

    private func transactionalProducer(_ name: String) throws -> KafkaProducer {
        // A short transaction timeout bounds how long a transaction this check leaves open (on a
        // broker without abort on takeover) can stall the partition.
        try KafkaProducer(properties: [("transaction.timeout.ms", "60000")] + baseProperties,
                          transactionalID: "sluice-check-\(runID)-\(name)")
    }

    private func produce(_ producer: KafkaProducer, _ tag: String, count: Int, partition: Int) throws {
        for i in 0..<count {
            try producer.produce(topic: options.topic, partition: Int32(partition), key: Array(tag.utf8),
                                 value: Array("sluice-check \(runID) \(tag) \(i)".utf8))
        }
    }

    private func highWatermark(_ partition: Int) throws -> Int64 {
        let consumer = try KafkaConsumer(properties: baseProperties, topic: options.topic, group: "sluice-check-\(runID)", readCommitted: false)
        return try consumer.watermarks(partition: partition, timeoutMs: options.operationTimeoutMs).high
    }

    /// This run's records in `partition` from `start`, as tags in log order, read by a new consumer
    /// until `done` says so, the end (with `stopAtEnd`), or the read timeout.
    private func read(_ partition: Int, from start: Int64, readCommitted: Bool, stopAtEnd: Bool = false,
                      until done: ([String]) -> Bool) throws -> [String] {
        let consumer = try KafkaConsumer(properties: baseProperties, topic: options.topic, group: "sluice-check-\(runID)",
                                         readCommitted: readCommitted)
        try consumer.assign(partition: partition, offset: start)
        let prefix = "sluice-check \(runID) "
        var tags: [String] = []
        let deadline = ContinuousClock.now + options.readTimeout
        while ContinuousClock.now < deadline, !done(tags) {
            let result: KafkaPollResult
            do {
                result = try consumer.poll(max: 1000, timeoutMs: 100) { message in
                    guard let value = message.value else { return }
                    let text = String(decoding: value, as: UTF8.self)
                    guard text.hasPrefix(prefix) else { return }
                    if let tag = text.dropFirst(prefix.count).split(separator: " ").first { tags.append(String(tag)) }
                }
            } catch let error as KafkaError where error.isRetriable {
                continue  // a broker hiccup: the deadline bounds the retries
            }
            if stopAtEnd, result.endOffset != nil { break }
        }
        return tags
    }
}

private extension [String] {
    func count(_ tag: String) -> Int { filter { $0 == tag }.count }
}
