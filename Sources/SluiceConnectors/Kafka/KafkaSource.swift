import Foundation
import Logging
import SluiceCore
import SluiceDrivers

/// A topic's partitions as Sluice partitions. Each partition source owns a consumer assigned to
/// its one partition (no group membership: the coordinator places partitions), reading with
/// `isolation.level=read_committed`, so aborted transactions never enter a job.
struct KafkaSourcePartitions: SourcePartitions {
    let spec: KafkaSpec
    let partitions: Int
    let group: String
    /// JSON values have their line ends turned to spaces (a line end is whitespace between JSON
    /// tokens and invalid inside a string), so that one message stays one record.
    let json: Bool
    /// `time: kafka_timestamp`: each record gets the message timestamp as its last field (CSV,
    /// after this delimiter) or first member (JSON).
    let timestampDelimiter: UInt8?
    let injectsTimestamp: Bool
    /// Reads the job's key out of a record, to compare it with the message key (nil: a key
    /// derived by `derive`, which the check leaves to the engine's partition check).
    let keyReader: (decoder: RecordDecoder, fields: [Int])?
    let keyFieldNames: String
    /// A view's changelog (kind `view`): each message becomes a `ViewChangeLine`, a null value
    /// (a tombstone) the delete of its key, whose record is made from the message key.
    let view: ViewTombstones?

    init(spec: KafkaSpec, options: SourceOptions) throws {
        self.spec = spec
        group = spec.group ?? "sluice-\(options.jobName)"
        if case .csv(header: true, _) = options.format {
            throw SourceError("\(spec.topic): a Kafka message is one record, so it has no header line: set csv: {header: false} (values in schema order)")
        }
        json = options.format == .json
        injectsTimestamp = options.schema.fields.last?.name == Pipeline.kafkaTimestamp
        keyFieldNames = options.keyFields.joined(separator: ", ")
        let indices = options.keyFields.compactMap { name in options.schema.fields.firstIndex { $0.name == name } }
        keyReader = !options.keyFields.isEmpty && indices.count == options.keyFields.count && !injectsTimestamp
            ? (RecordDecoder(schema: options.schema, format: options.format), indices) : nil
        if case .csv(_, let delimiter) = options.format { timestampDelimiter = delimiter } else { timestampDelimiter = nil }
        view = options.view ? ViewTombstones(schema: options.schema, keyFields: options.keyFields, format: options.format) : nil
        if options.view && injectsTimestamp {
            throw SourceError("a job of kind view has no time: remove `time: \(Pipeline.kafkaTimestamp)`")
        }
        if let wanted = spec.partitioner, let job = options.partitioner, wanted != job {
            throw SourceError("kafka://…/\(spec.topic)?partitioner=\(wanted.rawValue): the job places keys with \(job.rawValue); set `partitioner: \(wanted.rawValue)` in the job so that its partition check hashes keys as the producers did")
        }
        partitions = try KafkaSourcePartitions.partitionCount(spec)
    }

    /// The topic's partition count: a missing topic or an unreachable cluster is an error naming
    /// the URI.
    /// `consumer`: one the caller already has (nil: a short-lived one for the question).
    static func partitionCount(_ spec: KafkaSpec, consumer: KafkaConsumer? = nil) throws -> Int {
        do {
            let consumer = try consumer ?? KafkaConsumer(properties: spec.clientProperties, topic: spec.topic, group: "sluice-metadata")
            return try consumer.partitionCount(timeoutMs: 15_000)
        } catch let error as KafkaError where error.code == KafkaError.unknownTopic {
            throw SourceError("kafka://\(spec.bootstrap)/\(spec.topic): the topic does not exist; create it (Sluice creates no topics)")
        } catch let error as KafkaError {
            throw SourceError("kafka://\(spec.bootstrap)/\(spec.topic): cannot read the topic's metadata (\(error.message)); is the bootstrap list right and the cluster up?")
        }
    }

    func open(partition: Int, position: Int64, tuning: SourceTuning, logger: Logger) throws -> any PartitionSource {
        try open(partition: partition, position: position, note: nil, tuning: tuning, logger: logger)
    }

    func open(partition: Int, position: Int64, note: String?, tuning: SourceTuning, logger: Logger) throws -> any PartitionSource {
        // A throttled run (`--rate`) reads blocks of about 50 ms of events, as from a generator.
        try KafkaPartitionSource(sources: self, partition: partition, position: position, note: note,
                                 messagesPerRead: Int(min(20_000, max(1, tuning.generatorLinesPerRead))), logger: logger)
    }
}

/// One topic partition. The position is the next offset to read; with `stop=latest` the source
/// ends at the last stable offset seen when the partition first started, kept in the checkpoint
/// (`checkpointNote`) so that a resumed run stops at the same offset.
final class KafkaPartitionSource: PartitionSource {
    private(set) var position: Int64
    private(set) var lastReadWasEmpty = false
    var positionCountsLines: Bool { false }
    var remaining: Int64? { stop.map { max(0, $0 - position) } }
    var checkpointNote: String? { stop.map { "kafka-stop=\($0)" } }

    private let consumer: KafkaConsumer
    private let partition: Int
    private let topic: String
    private let json: Bool
    private let injectsTimestamp: Bool
    private let delimiter: UInt8
    private let keyReader: (decoder: RecordDecoder, fields: [Int])?
    private let view: ViewTombstones?
    private var keyChecked = false
    private let keyFields: String
    private let stop: Int64?
    private let messagesPerRead: Int
    private let logger: Logger
    private var text: [UInt8] = []
    private let backoff = Backoff(baseMs: 100, capMs: 5_000)
    private var failures = 0
    /// The consumer's poll (`max` messages, no wait); a test puts one that fails mid-batch in its place.
    var pollMessages: (Int, (KafkaMessage) -> Void) throws -> KafkaPollResult

    init(sources: KafkaSourcePartitions, partition: Int, position: Int64, note: String?, messagesPerRead: Int, logger: Logger) throws {
        self.messagesPerRead = messagesPerRead
        let spec = sources.spec
        self.partition = partition
        self.position = position
        self.logger = logger
        topic = spec.topic
        json = sources.json
        injectsTimestamp = sources.injectsTimestamp
        delimiter = sources.timestampDelimiter ?? 44
        keyReader = sources.keyReader
        view = sources.view
        keyFields = sources.keyFieldNames
        // An offset below the log's start (deleted by retention) must stop the job, not skip ahead.
        consumer = try KafkaConsumer(properties: spec.clientProperties + [("auto.offset.reset", "error")], topic: spec.topic, group: sources.group)
        let now = try KafkaSourcePartitions.partitionCount(spec, consumer: consumer)
        guard now == sources.partitions else {
            throw SourceError("kafka://\(spec.bootstrap)/\(spec.topic) had \(sources.partitions) partitions when the job started and has \(now) now; a changed partition count moves keys between partitions: start a new job (a new --state)")
        }
        if let note, note.hasPrefix("kafka-stop="), let recorded = Int64(note.dropFirst("kafka-stop=".count)) {
            stop = recorded
        } else if spec.stopAtLatest {
            stop = try consumer.watermarks(partition: partition, timeoutMs: 15_000).high
        } else {
            stop = nil
        }
        try consumer.assign(partition: partition, offset: position)
        pollMessages = { [consumer] max, body in try consumer.poll(max: max, timeoutMs: 0, body) }
    }

    func read(_ body: (UnsafeRawBufferPointer) -> Void) throws -> Bool {
        if let stop, position >= stop { return false }
        text.removeAll(keepingCapacity: true)
        var mismatch: String?
        let result: KafkaPollResult
        do {
            result = try pollMessages(messagesPerRead) { message in
                if let stop, message.offset >= stop { return }
                if !keyChecked, mismatch == nil, let key = message.key, let value = message.value {
                    mismatch = checkKey(Array(key), value: value)
                }
                if let view {
                    // A view's change: the row, or a tombstone's delete of the message key.
                    ViewChangeLine.append(upsert: message.value != nil, commitTimeMs: message.timestampMs, to: &text)
                    let start = text.count
                    if let value = message.value {
                        text.append(contentsOf: value)
                    } else {
                        view.appendKeyRecord(message.key.map { Array($0) }, to: &text)
                    }
                    for i in start..<text.count where text[i] == 10 || text[i] == 13 { text[i] = 32 }
                } else if let value = message.value {
                    let start = text.count
                    if injectsTimestamp {
                        appendWithTimestamp(value, timestampMs: message.timestampMs)
                    } else {
                        text.append(contentsOf: value)
                    }
                    if json {
                        for i in start..<text.count where text[i] == 10 || text[i] == 13 { text[i] = 32 }
                    }
                }
                text.append(10)  // a null value is an empty record: a dead letter
                position = message.offset + 1
            }
            failures = 0
        } catch let error as KafkaError where KafkaError.offsetOutOfRange.contains(error.code) {
            throw SourceError("\(topic)[\(partition)]: offset \(position) is no longer in the topic (deleted by retention, or the topic was recreated): the job cannot resume exactly where its checkpoint stands; start a new job (a new --state) or restore the topic")
        } catch let error as KafkaError where error.isRetriable || error.code < 0 {
            // A broker outage or a leader move: librdkafka reconnects; the lease is kept meanwhile.
            failures += 1
            let waitMs = backoff.step(failures: failures)
            logger.warning("partition \(partition): Kafka unavailable (\(error.message)); retry \(failures) in \(waitMs) ms")
            // The messages this poll handed over before the error are read: `position` is past
            // them, so they go to the job now (dropping them lost them for good: a fetch error
            // surfaced after a batch made the job skip the batch).
            if let mismatch { throw SourceError(mismatch) }
            if !text.isEmpty {
                lastReadWasEmpty = false
                text.withUnsafeBytes { body($0) }
                return true
            }
            usleep(UInt32(waitMs * 1_000))  // on the partition's lane, not the cooperative pool
            lastReadWasEmpty = true
            return true
        }
        if let mismatch { throw SourceError(mismatch) }
        // At the end of what is committed, skip past transaction markers (they take offsets).
        if let end = result.endOffset, end > position { position = stop.map { min($0, end) } ?? end }
        lastReadWasEmpty = text.isEmpty
        if !text.isEmpty { text.withUnsafeBytes { body($0) } }
        return true
    }

    /// The first keyed message that decodes must be keyed by the job's key in its canonical bytes
    /// (what the partition check hashes): a topic keyed otherwise is partitioned by something
    /// else, and the job cannot group by its key without a repartition. Returns the refusal.
    private func checkKey(_ key: [UInt8], value: UnsafeRawBufferPointer) -> String? {
        guard let keyReader, case .success(let values) = keyReader.decoder.decode(value) else { return nil }
        keyChecked = true
        var expected: [UInt8] = []
        guard KeyBytes.append(keyReader.fields.map { values[$0] }, to: &expected), expected != key else { return nil }
        return "\(topic)[\(partition)]: the messages are keyed by '\(String(decoding: key, as: UTF8.self))' where the job's key (\(keyFields)) is '\(String(decoding: expected, as: UTF8.self))': the topic is partitioned by another key, and a job can group only by the key its input is partitioned by (in the canonical key bytes: text as UTF-8, integers in decimal, parts joined by 0x1f) until repartitioning exists; key the messages by the job's key, or group by the topic's"
    }

    /// The value with `kafka_timestamp` added: JSON `{"kafka_timestamp":MS,…}` (a value that is not
    /// an object is left as it is: a dead letter), CSV `…,MS`. A message without a timestamp gets
    /// null (a dead letter naming the field).
    private func appendWithTimestamp(_ value: UnsafeRawBufferPointer, timestampMs: Int64) {
        let stamp = timestampMs >= 0 ? Array(String(timestampMs).utf8) : Array("null".utf8)
        guard json else {
            text.append(contentsOf: value)
            text.append(delimiter)
            if timestampMs >= 0 { text.append(contentsOf: stamp) }
            return
        }
        guard let open = value.firstIndex(where: { $0 != 32 && $0 != 9 && $0 != 10 && $0 != 13 }), value[open] == 123 else {
            text.append(contentsOf: value)
            return
        }
        text.append(contentsOf: value[...open])
        text.append(contentsOf: Array("\"\(Pipeline.kafkaTimestamp)\":".utf8))
        text.append(contentsOf: stamp)
        let rest = value[(open + 1)...]
        if rest.first(where: { $0 != 32 && $0 != 9 && $0 != 10 && $0 != 13 }) != 125 { text.append(44) }
        text.append(contentsOf: rest)
    }

    /// For monitoring only: standard lag tooling shows the group's committed offsets.
    func committed(position: Int64) {
        consumer.commit(partition: partition, offset: position)
    }
}

/// Tombstones of a compacted topic as records of the job's format: the message key (canonical key
/// bytes, parts joined by 0x1f) put back into the key's fields, every other field absent. A key
/// that does not split into the key's parts makes a record the decoder refuses: a dead letter.
struct ViewTombstones: Sendable {
    let fields: [Field]
    let keyFields: [String]
    let format: RecordFormat

    init(schema: Schema, keyFields: [String], format: RecordFormat) {
        fields = schema.fields
        self.keyFields = keyFields
        self.format = format
    }

    func appendKeyRecord(_ key: [UInt8]?, to out: inout [UInt8]) {
        let parts = key.map { $0.split(separator: KeyBytes.separator, omittingEmptySubsequences: false).map(Array.init) } ?? []
        guard parts.count == keyFields.count else { return }  // an empty record: a dead letter
        switch format {
        case .json:
            out.append(123)
            for (i, name) in keyFields.enumerated() {
                if i > 0 { out.append(44) }
                KafkaRows.string(name, to: &out)
                out.append(58)
                let type = fields.first { $0.name == name }?.type ?? .string
                if type == .string {
                    KafkaRows.string(String(decoding: parts[i], as: UTF8.self), to: &out)
                } else {
                    out.append(contentsOf: parts[i])  // a number or a bool: the decoder checks it
                }
            }
            out.append(125)
        case .csv(_, let delimiter):
            for (f, field) in fields.enumerated() {
                if f > 0 { out.append(delimiter) }
                guard let k = keyFields.firstIndex(of: field.name) else { continue }
                out.append(34)
                for b in parts[k] {
                    if b == 34 { out.append(34) }
                    out.append(b)
                }
                out.append(34)
            }
        }
    }
}
