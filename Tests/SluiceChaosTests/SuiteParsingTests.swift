import Foundation
import Testing
@testable import SluiceChaos

@Suite struct SuiteParsingTests {
    /// The error names the field and what to do.
    private func refusal(_ yaml: String) -> SuiteError? {
        do {
            _ = try Suite.parse(yaml: yaml)
            return nil
        } catch let error as SuiteError {
            return error
        } catch {
            Issue.record("unexpected error \(error)")
            return nil
        }
    }

    private let base = "name: t\nfaults:\n"

    @Test func errorsNameTheField() throws {
        let cases: [(String, String, String)] = [
            (base + "  - {at: 5, kind: explode_worker, target: worker-1}", "faults[0].kind", "unknown fault kind 'explode_worker'"),
            (base + "  - {at: 5, kind: kill_worker}", "faults[0].target", "missing"),
            (base + "  - {at: 5, kind: kill_worker, target: worker-1}\n  - {at: 9, kind: pause_worker, target: worker-1}", "faults[1].for", "missing"),
            (base + "  - {at: 5, kind: cut_worker, target: worker-1, mode: jam, for: 3}", "faults[0].mode", "unknown mode 'jam'"),
            (base + "  - {at: 5, kind: cut_worker, target: worker-1, mode: delay, for: 3}", "faults[0].delay_ms", "missing"),
            (base + "  - {at: 5, kind: cut_worker, target: worker-1, mode: blackhole, direction: sideways, for: 3}", "faults[0].direction", "unknown direction"),
            (base + "  - {at: 5, kind: kill_coordinator, target: worker-1}", "faults[0].target", "not used by kill_coordinator"),
            (base + "  - {at: 5, kind: kill_worker, target: worker-9}", "faults[0].target", "worker-9 is not running at 5 s"),
            (base + "  - {at: 5, kind: remove_worker, target: worker-1}\n  - {at: 9, kind: pause_worker, target: worker-1, for: 2}", "faults[1].target", "worker-1 is not running at 9 s"),
            (base + "  - {at: 5, kind: restart_store}", "faults[0].kind", "needs `store: postgres`"),
            ("name: t\ntopology: {workers: 0}\nfaults: []", "topology.workers", "must be between 1 and 32"),
            ("name: t\ntopology: {workers: 2, wrokers: 3}\nfaults: []", "topology.wrokers", "unknown field"),
            ("name: t\nworkload: {events: many}\nfaults: []", "workload.events", "expected an integer"),
            ("name: t\nstore: mysql\nfaults: []", "store", "expected sqlite, postgres"),
            ("name: t\nrandom: {seed: 1, gap_s: [9, 3]}", "random.gap_s", "above high"),
            ("name: t\nrandom: {kinds: [kill_worker, cut_worker_from_store]}", "random.kinds[1]", "needs `store: postgres`"),
            ("name: t\nstore: postgres\nfaults:\n  - {at: 5, kind: fill_disk, target: worker-1, for: 3}", "faults[0].kind", "use cut_worker_from_store"),
            ("name: t\nstore: postgres://u@127.0.0.1:5432/db\nfaults:\n  - {at: 5, kind: restart_store}", "faults[0].kind", "cannot restart the server at postgres://u@127.0.0.1:5432/db"),
            ("name: t\nstore: postgres\nrandom: {kinds: [fill_disk]}", "random.kinds[0]", "'fill_disk' fails a worker's own file writes"),
            ("name: t\ntopology: {store_retry_ms: 5000}\nfaults:\n  - {at: 5, kind: kill_worker, target: worker-1}", "topology.store_retry_ms", "applies to `store: postgres` only"),
            ("name: t\nstore: postgres\ntopology: {store_retry_ms: 5}\nfaults: []", "topology.store_retry_ms", "must be between 100 and 3600000"),
            ("faults: []", "name", "missing"),
            ("name: t", "faults", "needs `faults:`, `random:` or both"),
        ]
        for (yaml, path, message) in cases {
            let error = refusal(yaml)
            #expect(error?.path == path, "for \(yaml): \(String(describing: error))")
            #expect(error?.message.contains(message) == true, "for \(yaml): \(String(describing: error))")
        }
    }

    @Test func parsesEveryFaultKindAndThePostgresStores() throws {
        let suite = try Suite.parse(yaml: """
            name: pg
            store: postgres
            topology: {workers: 2, partitions: 4, store_retry_ms: 5000}
            faults:
              - {at: 1, kind: restart_store, restart_after: 2}
              - {at: 2, kind: cut_worker_from_store, target: worker-1, mode: delay, delay_ms: 100, jitter_ms: 20, for: 3}
              - {at: 3, kind: cut_worker, target: worker-2, mode: bandwidth, bytes_per_s: 1000, direction: upstream, for: 4}
              - {at: 4, kind: add_worker}
            """)
        #expect(suite.store == .postgres(url: nil))
        #expect(suite.topology.storeRetryMs == 5000)
        #expect(suite.faults.map(\.kind) == [.restartStore, .cutWorkerFromStore, .cutWorker, .addWorker])
        #expect(suite.faults[0].restartAfter == 2)
        #expect(suite.faults[1].network == .delay(ms: 100, jitterMs: 20))
        #expect(suite.faults[2].direction == .upstream)
        // A given server: everything but restarting it.
        let given = try Suite.parse(yaml: """
            name: pg
            store: postgres://sluice@127.0.0.1:5432/sluice
            faults:
              - {at: 2, kind: cut_worker_from_store, target: worker-1, mode: reset, for: 3}
            """)
        #expect(given.store == .postgres(url: "postgres://sluice@127.0.0.1:5432/sluice"))
        let embedded = try Suite.parse(yaml: base + "  - {at: 5, kind: fill_disk, target: worker-3, for: 2, file_size_limit: 4096}")
        #expect(embedded.faults[0].fileSizeLimit == 4096)
    }

    @Test func theShippedSuitesParse() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        for name in ["smoke", "standard", "random"] {
            let suite = try Suite.load(path: root.appendingPathComponent("chaos/suites/\(name).yaml").path)
            #expect(suite.name == name)
            #expect(!Schedule.build(suite).isEmpty)
        }
        // standard has every fault kind the embedded store offers.
        let standard = try Suite.load(path: root.appendingPathComponent("chaos/suites/standard.yaml").path)
        #expect(Set(standard.faults.map(\.kind)) == Set(FaultKind.availableOnSQLite))
        let modes = Set(standard.faults.compactMap { $0.network?.name })
        #expect(modes == ["blackhole", "delay", "reset", "bandwidth"])
        // postgres has every fault kind that applies to PostgreSQL, and every mode between a worker and the database.
        let postgres = try Suite.load(path: root.appendingPathComponent("chaos/suites/postgres.yaml").path)
        #expect(postgres.name == "postgres")
        #expect(postgres.store == .postgres(url: nil))
        #expect(Set(postgres.faults.map(\.kind)) == Set(FaultKind.availableOnPostgres))
        let storeModes = Set(postgres.faults.filter { $0.kind == .cutWorkerFromStore }.compactMap { $0.network?.name })
        #expect(storeModes == ["blackhole", "delay", "reset", "bandwidth"])
        let storeDirections = Set(postgres.faults.filter { $0.kind == .cutWorkerFromStore }.map(\.direction))
        #expect(storeDirections.count >= 2)
    }

    @Test func theKafkaSuiteParses() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let suite = try Suite.load(path: root.appendingPathComponent("chaos/suites/kafka.yaml").path)
        #expect(suite.name == "kafka")
        #expect(suite.source == .kafka && suite.sink == .kafka && suite.usesKafka)
        #expect(suite.kafka.brokers == 3)
        let kinds = Set(suite.faults.map(\.kind))
        for kind in [FaultKind.kafkaBrokerDown, .kafkaLeaderChange, .kafkaRequestErrors, .killWorker, .pauseWorker, .killCoordinator] {
            #expect(kinds.contains(kind), "kafka.yaml has no \(kind.rawValue)")
        }
        let down = try #require(suite.faults.first { $0.kind == .kafkaBrokerDown })
        #expect(down.broker == 1 && down.duration == 12 && down.summary == "kafka_broker_down broker 1 for 12 s")
        let leader = try #require(suite.faults.first { $0.kind == .kafkaLeaderChange })
        #expect(leader.topic == .input && leader.partition == 3 && leader.broker == 2)
        let errors = try #require(suite.faults.first { $0.kind == .kafkaRequestErrors })
        #expect(errors.api == .produce && errors.api?.key == 0 && errors.count == 20 && errors.errorCode.code == 7)
        // The defaults are unchanged: the generator in, the store's own sink out.
        let plain = try Suite.parse(yaml: base + "  - {at: 5, kind: kill_worker, target: worker-1}")
        #expect(plain.source == .generator && plain.sink == .store && !plain.usesKafka)
        // A Kafka source alone, or a sink alone, is enough for the Kafka faults.
        let sinkOnly = try Suite.parse(yaml: "name: t\nsink: kafka\nfaults:\n  - {at: 5, kind: kafka_request_errors, api: end_txn, count: 2, error: NOT_COORDINATOR}")
        #expect(sinkOnly.source == .generator && sinkOnly.faults[0].errorCode == .notCoordinator)
    }

    @Test func kafkaFaultsWithoutKafkaAreRefused() throws {
        let kafka = "name: t\nsource: kafka\nsink: kafka\nfaults:\n"
        let cases: [(String, String, String)] = [
            (base + "  - {at: 5, kind: kafka_broker_down, broker: 1, for: 3}", "faults[0].kind", "needs a Kafka broker: set `source: kafka` or `sink: kafka`"),
            (base + "  - {at: 5, kind: kafka_leader_change, partition: 0, broker: 2}", "faults[0].kind", "needs a Kafka broker"),
            (base + "  - {at: 5, kind: kafka_request_errors, api: produce, count: 3}", "faults[0].kind", "needs a Kafka broker"),
            ("name: t\nstore: postgres\nfaults:\n  - {at: 5, kind: kafka_broker_down, broker: 1, for: 3}", "faults[0].kind", "needs a Kafka broker"),
            ("name: t\nrandom: {kinds: [kill_worker, kafka_request_errors]}", "random.kinds[1]", "needs a Kafka broker"),
            ("name: t\nsource: kafka\nkafka: {brokers: 1}\nrandom: {kinds: [kill_worker, kafka_broker_down]}", "random.kinds[1]", "needs a broker that stays up"),
            ("name: t\nrandom: {concurrency: 0}", "random.concurrency", "1"),
            ("name: t\nrandom: {concurrency: 17}", "random.concurrency", "16"),
            ("name: t\ntopology: {coordinators: 4}\nrandom: {}", "topology.coordinators", "3"),
            ("name: t\nkafka: {brokers: 3}\nfaults:\n  - {at: 5, kind: kill_worker, target: worker-1}", "kafka", "has neither"),
            ("name: t\nsource: pulsar\nfaults: []", "source", "expected generator or kafka"),
            ("name: t\nsink: s3\nfaults: []", "sink", "expected store"),
            (kafka + "  - {at: 5, kind: kafka_broker_down, for: 3}", "faults[0].broker", "missing"),
            (kafka + "  - {at: 5, kind: kafka_broker_down, broker: 4, for: 3}", "faults[0].broker", "no broker 4"),
            (kafka + "  - {at: 5, kind: kafka_broker_down, broker: 1}", "faults[0].for", "missing"),
            (kafka + "  - {at: 5, kind: kafka_broker_down, broker: 1, for: 9}\n  - {at: 8, kind: kafka_broker_down, broker: 1, for: 2}", "faults[1].broker", "already down at 8 s"),
            ("name: t\nsink: kafka\nkafka: {brokers: 2}\nfaults:\n  - {at: 5, kind: kafka_broker_down, broker: 1, for: 9}\n  - {at: 8, kind: kafka_broker_down, broker: 2, for: 2}",
             "faults[1].broker", "would leave no broker up"),
            (kafka + "  - {at: 5, kind: kafka_broker_down, broker: 1, for: 9}\n  - {at: 8, kind: kafka_leader_change, partition: 0, broker: 1}", "faults[1].broker", "is down at 8 s"),
            (kafka + "  - {at: 5, kind: kafka_leader_change, partition: 8, broker: 1}", "faults[0].partition", "partitions 0…7"),
            (kafka + "  - {at: 5, kind: kafka_leader_change, topic: progress, partition: 1, broker: 1}", "faults[0].partition", "partitions 0…0"),
            (kafka + "  - {at: 5, kind: kafka_leader_change, topic: other, partition: 1, broker: 1}", "faults[0].topic", "expected one of input, output, progress"),
            ("name: t\nsource: kafka\nfaults:\n  - {at: 5, kind: kafka_leader_change, topic: output, partition: 0, broker: 1}", "faults[0].topic", "with `sink: kafka` only"),
            ("name: t\nsink: kafka\nfaults:\n  - {at: 5, kind: kafka_leader_change, partition: 0, broker: 1}", "faults[0].topic", "with `source: kafka` only"),
            (kafka + "  - {at: 5, kind: kafka_request_errors, api: sasl, count: 3}", "faults[0].api", "unknown API 'sasl'"),
            (kafka + "  - {at: 5, kind: kafka_request_errors, api: produce}", "faults[0].count", "missing"),
            (kafka + "  - {at: 5, kind: kafka_request_errors, api: produce, count: 3, error: TOPIC_AUTHORIZATION_FAILED}", "faults[0].error", "expected a retriable Kafka error"),
            (kafka + "  - {at: 5, kind: kafka_request_errors, api: produce, count: 3, broker: 1}", "faults[0].broker", "not used by kafka_request_errors"),
            (kafka + "  - {at: 5, kind: kill_worker, target: worker-1, broker: 1}", "faults[0].broker", "not used by kill_worker"),
            (kafka + "  - {at: 5, kind: kafka_broker_down, target: worker-1, broker: 1, for: 2}", "faults[0].target", "not used by kafka_broker_down"),
        ]
        for (yaml, path, message) in cases {
            let error = refusal(yaml)
            #expect(error?.path == path, "for \(yaml): \(String(describing: error))")
            #expect(error?.message.contains(message) == true, "for \(yaml): \(String(describing: error))")
        }
        // The nemesis draws Kafka faults when the suite has a broker, and overlaps with `concurrency`.
        let drawn = try Suite.parse(yaml: "name: t\nsource: kafka\ntopology: {coordinators: 2}\nrandom: {concurrency: 3, kinds: [kafka_broker_down, kafka_leader_change, kafka_request_errors]}")
        #expect(drawn.random?.concurrency == 3 && drawn.random?.kinds.count == 3 && drawn.topology.coordinators == 2)
        // Two of three brokers may be down at once; a broker back up may go down again, and take leaders.
        _ = try Suite.parse(yaml: kafka + "  - {at: 5, kind: kafka_broker_down, broker: 1, for: 9}\n  - {at: 8, kind: kafka_broker_down, broker: 2, for: 2}")
        _ = try Suite.parse(yaml: kafka + "  - {at: 5, kind: kafka_broker_down, broker: 1, for: 3}\n  - {at: 9, kind: kafka_broker_down, broker: 1, for: 3}\n"
                            + "  - {at: 13, kind: kafka_leader_change, partition: 0, broker: 1}")
    }
}
