import CLibRDKafka
import Synchronization

/// A librdkafka producer, plain or transactional (`transactionalID`). Messages are copied when
/// produced; `flush` waits for their delivery and reports any that failed.
public final class KafkaProducer: @unchecked Sendable {
    private let handle: KafkaHandle
    private let deliveries: DeliveryReports
    public let transactionalID: String?

    /// `properties`: librdkafka configuration (`bootstrap.servers`, security, `partitioner`, …).
    public init(properties: [(String, String)], transactionalID: String? = nil) throws {
        var all = properties
        if let transactionalID { all.append(("transactional.id", transactionalID)) }
        let deliveries = DeliveryReports()
        self.deliveries = deliveries
        self.transactionalID = transactionalID
        handle = try KafkaHandle(kind: RD_KAFKA_PRODUCER, properties: all) { conf in
            rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(deliveries).toOpaque())
            rd_kafka_conf_set_dr_msg_cb(conf) { _, message, opaque in
                guard let message, let opaque else { return }
                let reports = Unmanaged<DeliveryReports>.fromOpaque(opaque).takeUnretainedValue()
                reports.record(message.pointee.err)
            }
        }
    }

    public func partitionCount(topic: String, timeoutMs: Int32 = 10_000) throws -> Int {
        try handle.partitionCount(topic: topic, timeoutMs: timeoutMs)
    }

    /// Queues one message. `partition` nil: the configured partitioner places it by key. A full
    /// local queue is drained (served delivery reports) and the message tried again.
    public func produce(topic: String, partition: Int32? = nil, key: [UInt8]?, value: [UInt8]?,
                        header: (name: String, value: [UInt8])? = nil, timestampMs: Int64 = 0) throws {
        let target = partition ?? RD_KAFKA_PARTITION_UA
        while true {
            let err: rd_kafka_resp_err_t = withOptionalBytes(key) { k, kl in
                withOptionalBytes(value) { v, vl in
                    if let header {
                        return header.value.withUnsafeBytes { h in
                            sluice_kafka_produce(handle.rk, topic, target, k, kl, v, vl, header.name, h.baseAddress, h.count, timestampMs)
                        }
                    }
                    return sluice_kafka_produce(handle.rk, topic, target, k, kl, v, vl, nil, nil, 0, timestampMs)
                }
            }
            if err == RD_KAFKA_RESP_ERR_NO_ERROR { return }
            guard err == RD_KAFKA_RESP_ERR__QUEUE_FULL else { throw KafkaError(err, "produce to '\(topic)'") }
            rd_kafka_poll(handle.rk, 10)
        }
    }

    /// Waits until every queued message is delivered; throws if any failed since the last flush.
    public func flush(timeoutMs: Int32) throws {
        let err = rd_kafka_flush(handle.rk, timeoutMs)
        let failed = deliveries.take()
        if let failed { throw KafkaError(failed, "delivery") }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err, "flush") }
    }

    // MARK: Transactions (a transactional producer only)

    /// Registers the transactional id with the broker's transaction coordinator: fences every older
    /// producer of the same id and completes (aborts) any transaction it left open.
    public func initTransactions(timeoutMs: Int32) throws {
        if let error = rd_kafka_init_transactions(handle.rk, timeoutMs) { throw KafkaError(taking: error, "init_transactions") }
    }

    public func beginTransaction() throws {
        if let error = rd_kafka_begin_transaction(handle.rk) { throw KafkaError(taking: error, "begin_transaction") }
    }

    /// Flushes the transaction's messages and commits it.
    public func commitTransaction(timeoutMs: Int32) throws {
        if let error = rd_kafka_commit_transaction(handle.rk, timeoutMs) { throw KafkaError(taking: error, "commit_transaction") }
        _ = deliveries.take()
    }

    public func abortTransaction(timeoutMs: Int32) throws {
        if let error = rd_kafka_abort_transaction(handle.rk, timeoutMs) { throw KafkaError(taking: error, "abort_transaction") }
        _ = deliveries.take()
    }
}

/// The first delivery failure since the last `take`.
final class DeliveryReports: Sendable {
    private let failure = Mutex<rd_kafka_resp_err_t?>(nil)

    func record(_ err: rd_kafka_resp_err_t) {
        guard err != RD_KAFKA_RESP_ERR_NO_ERROR else { return }
        failure.withLock { if $0 == nil { $0 = err } }
    }

    func take() -> rd_kafka_resp_err_t? {
        failure.withLock { value in
            defer { value = nil }
            return value
        }
    }
}

/// nil stays a null pointer (a null key or value: a tombstone); an empty array does not.
private func withOptionalBytes<R>(_ bytes: [UInt8]?, _ body: (UnsafeRawPointer?, Int) -> R) -> R {
    guard let bytes else { return body(nil, 0) }
    if bytes.isEmpty { return withUnsafePointer(to: 0 as UInt8) { body(UnsafeRawPointer($0), 0) } }
    return bytes.withUnsafeBytes { body($0.baseAddress, $0.count) }
}
