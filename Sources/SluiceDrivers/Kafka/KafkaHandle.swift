// SluiceDrivers owns the I/O drivers behind small Swift APIs; it knows nothing of jobs, checkpoints
// or partitions' meaning. Today: librdkafka (Kafka/). SQLite and libpq still live in SluiceStorage.

import CLibRDKafka

/// A librdkafka error: its code, its text, and what librdkafka says may be done about it.
public struct KafkaError: Error, CustomStringConvertible, Sendable {
    public var code: Int32
    public var message: String
    /// The handle can do nothing more (a fenced transactional producer): make a new one.
    public var isFatal = false
    public var isRetriable = false
    /// The open transaction must be aborted before the producer can go on.
    public var requiresAbort = false
    public var description: String { message }

    public init(code: Int32, message: String) {
        self.code = code
        self.message = message
    }

    init(_ err: rd_kafka_resp_err_t, _ context: String) {
        code = err.rawValue
        message = "\(context): \(String(cString: rd_kafka_err2str(err)))"
        isRetriable = KafkaError.transient.contains(err)
    }

    /// Consumes `error` (an `rd_kafka_error_t`, which the caller must not use again).
    init(taking error: OpaquePointer, _ context: String) {
        code = rd_kafka_error_code(error).rawValue
        message = "\(context): \(String(cString: rd_kafka_error_string(error)))"
        isFatal = rd_kafka_error_is_fatal(error) != 0
        isRetriable = rd_kafka_error_is_retriable(error) != 0
        requiresAbort = rd_kafka_error_txn_requires_abort(error) != 0
        rd_kafka_error_destroy(error)
    }

    /// Errors a broker outage or a leader move causes: worth another try.
    static let transient: Set<rd_kafka_resp_err_t> = [
        RD_KAFKA_RESP_ERR__TRANSPORT, RD_KAFKA_RESP_ERR__TIMED_OUT, RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN,
        RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE, RD_KAFKA_RESP_ERR_BROKER_NOT_AVAILABLE,
        RD_KAFKA_RESP_ERR__WAIT_COORD, RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
        RD_KAFKA_RESP_ERR_NOT_COORDINATOR, RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS,
    ]

    public static let unknownTopic = RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART.rawValue
    /// The position is outside the partition's log (deleted by retention), with
    /// `auto.offset.reset=error`.
    public static let offsetOutOfRange: Set<Int32> = [RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET.rawValue,
                                                      RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE.rawValue]
    public static let localUnknownTopic = RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC.rawValue
    public static let fenced = RD_KAFKA_RESP_ERR__FENCED.rawValue
    public static let producerFenced = RD_KAFKA_RESP_ERR_PRODUCER_FENCED.rawValue
    public static let invalidProducerEpoch = RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH.rawValue
}

/// One `rd_kafka_t`, a producer's or a consumer's, made from `name=value` properties.
/// librdkafka's handles are thread-safe, hence `@unchecked Sendable` on the types that own one.
final class KafkaHandle: @unchecked Sendable {
    let rk: OpaquePointer

    /// `configure` runs on the conf before the handle takes it (callbacks, opaque).
    init(kind: rd_kafka_type_t, properties: [(String, String)], configure: (OpaquePointer) -> Void = { _ in }) throws {
        guard let conf = rd_kafka_conf_new() else { throw KafkaError(code: -1, message: "rd_kafka_conf_new failed") }
        var errstr = [CChar](repeating: 0, count: 512)
        for (name, value) in properties {
            if rd_kafka_conf_set(conf, name, value, &errstr, errstr.count) != RD_KAFKA_CONF_OK {
                rd_kafka_conf_destroy(conf)
                // The value is left out: it may be a secret.
                throw KafkaError(code: -1, message: "Kafka property '\(name)': \(cText(errstr))")
            }
        }
        configure(conf)
        guard let rk = rd_kafka_new(kind, conf, &errstr, errstr.count) else {
            rd_kafka_conf_destroy(conf)
            throw KafkaError(code: -1, message: "cannot make a Kafka client: \(cText(errstr))")
        }
        self.rk = rk
    }

    deinit { rd_kafka_destroy(rk) }

    /// The partition count of `topic`; a missing topic is `KafkaError.unknownTopic`. Asks for every
    /// topic's metadata: a request naming the topic may make a broker create it.
    func partitionCount(topic: String, timeoutMs: Int32) throws -> Int {
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let err = rd_kafka_metadata(rk, 1, nil, &metadata, timeoutMs)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else { throw KafkaError(err, "metadata of topic '\(topic)'") }
        defer { rd_kafka_metadata_destroy(metadata) }
        let topics = UnsafeBufferPointer(start: metadata.pointee.topics, count: Int(metadata.pointee.topic_cnt))
        guard let entry = topics.first(where: { $0.topic.map { String(cString: $0) } == topic }), entry.partition_cnt > 0 else {
            throw KafkaError(code: KafkaError.unknownTopic, message: "topic '\(topic)' does not exist")
        }
        if entry.err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(entry.err, "topic '\(topic)'") }
        return Int(entry.partition_cnt)
    }

    /// The low and high watermarks of a partition (for a read_committed consumer, the high one is
    /// the last stable offset).
    func watermarks(topic: String, partition: Int32, timeoutMs: Int32) throws -> (low: Int64, high: Int64) {
        var low: Int64 = 0, high: Int64 = 0
        let err = rd_kafka_query_watermark_offsets(rk, topic, partition, &low, &high, timeoutMs)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err, "offsets of \(topic)[\(partition)]") }
        return (low, high)
    }
}

/// A NUL-terminated C buffer as text.
func cText(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
