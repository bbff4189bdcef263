// Change data capture into Kafka: a job of kind `changes` reads postgres-cdc:// and writes each
// change event to a topic (librdkafka's mock cluster), keyed by the source's key column, exactly
// once as read through the transaction-outcome log (Kafka's read_committed and fencing rules).

import Foundation
import SluiceConnectors
import SluiceDrivers
import Testing

extension SluiceEndToEndTests.PostgresTests {
    @Test("CDC on PostgreSQL into a Kafka topic: each change event once, keyed by the key column, each key's events in commit order",
          .timeLimit(.minutes(5)))
    func cdcChangeEventsIntoKafka() async throws {
        let database = try TestPostgres.freshDatabase("cdckafka")
        let conn = try TestPostgres.connect(database)
        try conn.execute("CREATE TABLE accounts(id bigint PRIMARY KEY, name text NOT NULL, balance bigint NOT NULL, note text)")
        let partitions = 2
        let prefix = "sluice_e2e_\(UInt32.random(in: 0...UInt32.max))"
        defer { Task.detached { await Self.dropSlots(database, prefix: prefix) } }
        let kafka = try KafkaMockCluster(brokers: 3)
        try kafka.createTopic("account-changes", partitions: 4)
        try kafka.createTopic("account-changes.sluice-progress", partitions: 1)
        let scratch = try ScratchDir("cdc-kafka")
        defer { scratch.remove() }
        let job = scratch.at("job.yaml")
        try "name: cdc-kafka\nkind: changes\ntable: changes\ncheckpoint: {interval_ms: 300}\n".write(toFile: job, atomically: true, encoding: .utf8)
        let source = Self.cdcURI(database, "table=accounts&partitions=\(partitions)&key=id&slot=\(prefix)")
        let cluster = try await Cluster(label: "pg-cdc-kafka", input: scratch.path, database: database, inputURI: source, job: job)
        defer { cluster.tearDown() }
        let sink = "kafka://\(kafka.bootstrapServers)/account-changes?key=id"
        let outcomes = scratch.at("transactions.log")
        cluster.sink = sink
        cluster.workerArguments = ["--state", database]
        cluster.workerEnvironment = [KafkaTransactionOutcomes.environmentVariable: outcomes]
        try await cluster.startCoordinator()
        try cluster.startWorker("worker-1", rate: nil)
        _ = try await cluster.waitForStatus("worker-1 holds both partitions", timeout: .seconds(60)) { $0.settled && $0.heldCounts.count == 1 }
        let streaming = await Self.waitForSlots(conn, prefix: prefix, partitions: partitions)
        try #require(streaming, "the replication slots were not streaming within 60 s:\n\(cluster.diagnostics())")

        let written = try Self.cdcWriter(url: database, seed: 21, transactions: 120)
        let spec = try KafkaSpec(uri: sink)
        let log = KafkaTransactionOutcomes(path: outcomes)
        var events: [(key: String, change: WrittenChange, lsn: Int64, index: Int64)] = []
        let complete = await eventually(timeout: .seconds(90), every: .milliseconds(500)) {
            events = (try? KafkaTopicReader.readMessages(spec: spec, outcomes: log) { Self.kafkaChange($0) }.compactMap { $0 }) ?? []
            return events.count >= written.count
        }
        try await Task.sleep(for: .seconds(2))
        events = try KafkaTopicReader.readMessages(spec: spec, outcomes: log) { Self.kafkaChange($0) }.compactMap { $0 }
        #expect(complete, "the topic holds \(events.count) of the writer's \(written.count) changes:\n\(cluster.diagnostics())")
        // Keyed by the id column: each key's events in the order the writer made them.
        #expect(events.allSatisfy { $0.key == String($0.change.id) }, "a message not keyed by its row's id")
        // A key's messages share a Kafka partition; read in offset order, they follow the commits.
        var lastByKey: [String: (Int64, Int64)] = [:]
        var outOfOrder = 0
        for event in events {
            if let last = lastByKey[event.key], last >= (event.lsn, event.index) { outOfOrder += 1 }
            lastByKey[event.key] = (event.lsn, event.index)
        }
        #expect(outOfOrder == 0, "\(outOfOrder) messages come before an older change of their key")
        let ordered = events.sorted { ($0.lsn, $0.index) < ($1.lsn, $1.index) }.map(\.change)
        #expect(ordered == written, "the topic's change events differ from the writer's (\(ordered.count) vs \(written.count))")
        print("[postgres cdc → kafka] \(written.count) changes, transactions \(log.counts())")
        _ = await cluster.stopGracefully()
        await Self.dropSlots(database, prefix: prefix)
    }

    /// A change event's message: its key (the id) and the change, with its LSN and index.
    static func kafkaChange(_ message: KafkaMessage) -> (key: String, change: WrittenChange, lsn: Int64, index: Int64)? {
        guard let value = message.value, let object = try? JSONSerialization.jsonObject(with: Data(value)) as? [String: Any],
              let op = object["op"] as? String, let lsn = (object["lsn"] as? NSNumber)?.int64Value,
              let index = (object["lsn_index"] as? NSNumber)?.int64Value else { return nil }
        func row(_ any: Any?) -> [String: String?]? { (any as? [String: Any])?.mapValues { $0 as? String } }
        let before = row(object["before"]), after = row(object["after"])
        let id = Int64(((op == "delete" ? before : after)?["id"] ?? nil) ?? "") ?? -1
        let key = String(decoding: message.key.map { Array($0) } ?? [], as: UTF8.self)
        return (key, WrittenChange(op: op, id: id, before: before, after: after), lsn, index)
    }
}
