import SluiceCore
import SluiceDrivers
import Testing

/// The librdkafka driver against the mock cluster: placement by key, positions, ends, topics.
@Suite struct KafkaDriverTests {
    @Test func murmur2PlacementMatchesTheJavaClientAndOffsetsResume() throws {
        let cluster = try KafkaMockCluster(brokers: 3)
        try cluster.createTopic("orders", partitions: 4)
        let producer = try KafkaProducer(properties: [("bootstrap.servers", cluster.bootstrapServers),
                                                      ("partitioner", "murmur2_random")])
        let keys = (0..<200).map { "cust-\($0)" }
        for key in keys { try producer.produce(topic: "orders", key: Array(key.utf8), value: Array("{\"k\":\"\(key)\"}".utf8)) }
        try producer.flush(timeoutMs: 10_000)
        let partitioner = KeyPartitioner(.murmur2, partitions: 4)
        var seen = 0
        for p in 0..<4 {
            let consumer = try KafkaConsumer(properties: [("bootstrap.servers", cluster.bootstrapServers)], topic: "orders", group: "t")
            #expect(try consumer.partitionCount() == 4)
            let end = try consumer.watermarks(partition: p).high
            try consumer.assign(partition: p, offset: 0)
            var offsets: [Int64] = []
            var reachedEnd: Int64?
            for _ in 0..<100 where reachedEnd == nil {
                let result = try consumer.poll(max: 1000, timeoutMs: 100) { message in
                    let key = message.key.map { Array($0) } ?? []
                    #expect(partitioner.murmur2Partition(key) == p)
                    offsets.append(message.offset)
                }
                reachedEnd = result.endOffset
            }
            #expect(reachedEnd == end)
            #expect(offsets == Array(0..<end))
            seen += offsets.count
        }
        #expect(seen == keys.count)
    }

    @Test func aMissingTopicIsAnError() throws {
        let cluster = try KafkaMockCluster(brokers: 1)
        let consumer = try KafkaConsumer(properties: [("bootstrap.servers", cluster.bootstrapServers)], topic: "nope", group: "t")
        #expect(throws: KafkaError.self) { try consumer.partitionCount(timeoutMs: 5_000) }
    }

    @Test func transactionsRunAgainstTheMock() throws {
        let cluster = try KafkaMockCluster(brokers: 3)
        try cluster.createTopic("out", partitions: 2)
        let producer = try KafkaProducer(properties: [("bootstrap.servers", cluster.bootstrapServers)], transactionalID: "t-1")
        try producer.initTransactions(timeoutMs: 10_000)
        try producer.beginTransaction()
        try producer.produce(topic: "out", partition: 0, key: nil, value: [1, 2, 3], header: ("h", [9]))
        try producer.commitTransaction(timeoutMs: 10_000)
        let consumer = try KafkaConsumer(properties: [("bootstrap.servers", cluster.bootstrapServers)], topic: "out", group: "t")
        #expect(try consumer.watermarks(partition: 0).high >= 1)
    }

    /// The transaction-outcome log finds a message's transaction by its header.
    @Test func aHeaderRoundTripsThroughATransaction() throws {
        let cluster = try KafkaMockCluster(brokers: 1)
        try cluster.createTopic("h", partitions: 1)
        let producer = try KafkaProducer(properties: [("bootstrap.servers", cluster.bootstrapServers)], transactionalID: "x")
        try producer.initTransactions(timeoutMs: 10_000)
        try producer.beginTransaction()
        try producer.produce(topic: "h", partition: 0, key: [1], value: [2], header: ("sluice-txn", Array("abc/def/1".utf8)))
        try producer.commitTransaction(timeoutMs: 10_000)
        let consumer = try KafkaConsumer(properties: [("bootstrap.servers", cluster.bootstrapServers)], topic: "h", group: "t")
        try consumer.assign(partition: 0, offset: 0)
        var seen: [String] = []
        for _ in 0..<30 {
            let r = try consumer.poll(max: 10, timeoutMs: 100) { m in seen.append("\(m.offset) \(m.header("sluice-txn").map { String(decoding: $0, as: UTF8.self) } ?? "nil")") }
            if r.endOffset != nil { break }
        }
        #expect(seen == ["0 abc/def/1"])
    }
}
