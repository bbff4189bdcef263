import CLibRDKafka

/// One message as the consumer hands it over: valid only inside the `poll` callback.
public struct KafkaMessage {
    public var partition: Int32
    public var offset: Int64
    /// Milliseconds since the epoch (create or log-append time); -1 when the message has none.
    public var timestampMs: Int64
    public var key: UnsafeRawBufferPointer?
    public var value: UnsafeRawBufferPointer?
    let raw: UnsafeMutablePointer<rd_kafka_message_t>

    /// The value of the message's last header called `name`, if it has one.
    public func header(_ name: String) -> [UInt8]? {
        var headers: OpaquePointer?
        guard rd_kafka_message_headers(raw, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR, let headers else { return nil }
        var value: UnsafeRawPointer?
        var size = 0
        guard rd_kafka_header_get_last(headers, name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR else { return nil }
        guard let value else { return [] }
        return Array(UnsafeRawBufferPointer(start: value, count: size))
    }
}

/// What one `poll` saw besides messages.
public struct KafkaPollResult {
    public var messages = 0
    /// The consumer reached the partition's end (for read_committed: its last stable offset),
    /// which is this offset.
    public var endOffset: Int64?
}

/// A consumer of assigned partitions, positioned by the caller (no group membership, no
/// rebalancing: Sluice's coordinator places partitions). `group` is used to commit offsets for
/// monitoring only.
public final class KafkaConsumer: @unchecked Sendable {
    private let handle: KafkaHandle
    public let topic: String

    public init(properties: [(String, String)], topic: String, group: String, readCommitted: Bool = true) throws {
        var all = properties
        all.append(("group.id", group))
        all.append(("enable.auto.commit", "false"))
        all.append(("enable.auto.offset.store", "false"))
        all.append(("enable.partition.eof", "true"))
        all.append(("isolation.level", readCommitted ? "read_committed" : "read_uncommitted"))
        handle = try KafkaHandle(kind: RD_KAFKA_CONSUMER, properties: all)
        self.topic = topic
        rd_kafka_poll_set_consumer(handle.rk)
    }

    deinit { rd_kafka_consumer_close(handle.rk) }

    public func partitionCount(timeoutMs: Int32 = 10_000) throws -> Int {
        try handle.partitionCount(topic: topic, timeoutMs: timeoutMs)
    }

    public func watermarks(partition: Int, timeoutMs: Int32 = 10_000) throws -> (low: Int64, high: Int64) {
        try handle.watermarks(topic: topic, partition: Int32(partition), timeoutMs: timeoutMs)
    }

    /// Reads `partition` from `offset` on (its only assignment).
    public func assign(partition: Int, offset: Int64) throws {
        let list = rd_kafka_topic_partition_list_new(1)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        rd_kafka_topic_partition_list_add(list, topic, Int32(partition)).pointee.offset = offset
        let err = rd_kafka_assign(handle.rk, list)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err, "assign \(topic)[\(partition)]") }
    }

    /// Reads every partition of `partitions` from offset 0 (a plain consumer of a whole topic).
    public func assign(partitions: Range<Int>) throws {
        let list = rd_kafka_topic_partition_list_new(Int32(partitions.count))
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for p in partitions { rd_kafka_topic_partition_list_add(list, topic, Int32(p)).pointee.offset = 0 }
        let err = rd_kafka_assign(handle.rk, list)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err, "assign \(topic)") }
    }

    /// Hands over up to `max` messages: waits up to `timeoutMs` for the first, none for the rest.
    /// A consumer error other than the partition's end throws (transient ones are retriable).
    public func poll(max: Int, timeoutMs: Int32, _ body: (KafkaMessage) -> Void) throws -> KafkaPollResult {
        var result = KafkaPollResult()
        var wait = timeoutMs
        while result.messages < max, let message = rd_kafka_consumer_poll(handle.rk, wait) {
            defer { rd_kafka_message_destroy(message) }
            wait = 0
            let m = message.pointee
            if m.err == RD_KAFKA_RESP_ERR__PARTITION_EOF {
                result.endOffset = m.offset
                break
            }
            guard m.err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                var error = KafkaError(m.err, "consume \(topic)[\(m.partition)]")
                if let text = rd_kafka_message_errstr(message) { error.message += " (\(String(cString: text)))" }
                throw error
            }
            var type = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
            let timestamp = rd_kafka_message_timestamp(message, &type)
            body(KafkaMessage(partition: m.partition, offset: m.offset, timestampMs: timestamp,
                              key: m.key.map { UnsafeRawBufferPointer(start: $0, count: m.key_len) },
                              value: m.payload.map { UnsafeRawBufferPointer(start: $0, count: m.len) }, raw: message))
            result.messages += 1
        }
        return result
    }

    /// Commits `offset` (the next to read) of `partition` to the consumer group, without waiting.
    public func commit(partition: Int, offset: Int64) {
        let list = rd_kafka_topic_partition_list_new(1)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        rd_kafka_topic_partition_list_add(list, topic, Int32(partition)).pointee.offset = offset
        _ = rd_kafka_commit(handle.rk, list, 1)
    }
}
