import CLibRDKafka

/// librdkafka's in-memory mock cluster: brokers listening on 127.0.0.1 that any process can use
/// as bootstrap servers. A test broker: it keeps everything in memory, and it implements neither
/// transactional isolation nor fencing (read_committed consumers see aborted and open
/// transactions; a fenced producer can still commit).
public final class KafkaMockCluster: @unchecked Sendable {
    private let owner: KafkaHandle
    private let cluster: OpaquePointer
    public let brokers: Int

    public init(brokers: Int) throws {
        // The cluster lives inside a client handle; a producer with no bootstrap is enough.
        owner = try KafkaHandle(kind: RD_KAFKA_PRODUCER, properties: [("log_level", "3")])
        guard let cluster = rd_kafka_mock_cluster_new(owner.rk, Int32(brokers)) else {
            throw KafkaError(code: -1, message: "cannot start a mock Kafka cluster of \(brokers) brokers")
        }
        self.cluster = cluster
        self.brokers = brokers
    }

    deinit { rd_kafka_mock_cluster_destroy(cluster) }

    /// `127.0.0.1:PORT,…`, one per broker.
    public var bootstrapServers: String { String(cString: rd_kafka_mock_cluster_bootstraps(cluster)) }

    public func createTopic(_ name: String, partitions: Int, replication: Int? = nil) throws {
        let err = rd_kafka_mock_topic_create(cluster, name, Int32(partitions), Int32(replication ?? min(3, brokers)))
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err, "create topic '\(name)'") }
    }

    /// Broker ids are 1…brokers.
    public func setBroker(_ id: Int, up: Bool) throws {
        let err = up ? rd_kafka_mock_broker_set_up(cluster, Int32(id)) : rd_kafka_mock_broker_set_down(cluster, Int32(id))
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err, "broker \(id) \(up ? "up" : "down")") }
    }

    public func setLeader(topic: String, partition: Int, broker: Int) throws {
        let err = rd_kafka_mock_partition_set_leader(cluster, topic, Int32(partition), Int32(broker))
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err, "leader of \(topic)[\(partition)]") }
    }

    /// Makes `broker` the coordinator of a transactional id (`type` "transaction") or a consumer
    /// group ("group").
    public func setCoordinator(type: String, key: String, broker: Int) throws {
        let err = rd_kafka_mock_coordinator_set(cluster, type, key, Int32(broker))
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err, "\(type) coordinator of '\(key)'") }
    }

    /// The next `count` requests of the API `apiKey` (0 Produce, 1 Fetch, 3 Metadata, …) fail with
    /// `error` (a Kafka error code, e.g. 7 REQUEST_TIMED_OUT).
    public func pushRequestErrors(apiKey: Int16, count: Int, error: Int32) {
        var errors = [rd_kafka_resp_err_t](repeating: rd_kafka_resp_err_t(rawValue: error), count: count)
        rd_kafka_mock_push_request_errors_array(cluster, apiKey, count, &errors)
    }
}
