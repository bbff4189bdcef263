import Foundation
import SluiceDrivers
import Testing
@testable import SluiceConnectors

/// A fetch error that librdkafka surfaces after a batch of messages, inside one poll: the chaos
/// soak's `kafka_request_errors` on `fetch` made partitions skip the batch (the position moved past
/// messages that never reached the job; rows wrong, late events and dead letters shifted).
@Suite struct KafkaSourceFetchErrorTests {
    @Test func messagesHandedOverBeforeAFetchErrorReachTheJob() throws {
        let cluster = try KafkaMockCluster(brokers: 1)
        try cluster.createTopic("bids", partitions: 1)
        let producer = try KafkaProducer(properties: [("bootstrap.servers", cluster.bootstrapServers)])
        let lines = (0..<10).map { "\($0),\(100 + $0),5,1767225600000" }
        for line in lines { try producer.produce(topic: "bids", partition: 0, key: nil, value: Array(line.utf8)) }
        try producer.flush(timeoutMs: 10_000)

        let factory = try SourceFactory(uri: "kafka://\(cluster.bootstrapServers)/bids?stop=latest")
        let source = try #require(try factory.open(partition: 0, position: 0) as? KafkaPartitionSource)
        let real = source.pollMessages
        var failedOnce = false
        // The first poll hands over three messages, then meets the error a failed fetch surfaces
        // (what librdkafka's consumer queue holds after a batch when the next Fetch fails).
        source.pollMessages = { max, body in
            guard !failedOnce else { return try real(max, body) }
            failedOnce = true
            var handed = 0
            for _ in 0..<500 where handed < 3 {
                handed += try real(3 - handed, body).messages
                if handed < 3 { usleep(10_000) }
            }
            #expect(handed == 3)
            var error = KafkaError(code: 7, message: "consume bids[0]: Broker: Request timed out (Fetch from broker 1 failed)")
            error.isRetriable = true
            throw error
        }

        var read: [String] = []
        for _ in 0..<2_000 {
            let more = try source.read { bytes in
                read += String(decoding: bytes, as: UTF8.self).split(separator: "\n").map(String.init)
            }
            if !more { break }
            if source.lastReadWasEmpty { usleep(5_000) }
        }
        #expect(failedOnce)
        #expect(source.position == 10)
        #expect(read == lines, "every message, once, in order: the three before the error too")
    }
}
