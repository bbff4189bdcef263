// A coordinator and three workers reading an 8-partition Kafka topic of JSON orders (librdkafka's
// mock cluster, in this test process) while a worker is SIGKILLed, another SIGSTOPped past its
// lease and resumed, a broker taken down and partition leaders moved; then the results against the
// oracle. Once into the SQLite sink, once into a Kafka topic through the exactly-once sink, read
// back through the transaction-outcome log (Kafka's read_committed and fencing rules, which the
// mock does not apply).

import Foundation
import SluiceConnectors
import SluiceDrivers
import SluiceJob
import SluiceStorage
import SluiceVerification
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension SluiceEndToEndTests {
    @Suite struct KafkaClusterTests {
        static let partitions = 8
        /// 8 × 24,000 orders at 3,000 events/s per partition: about 8 s of work without faults.
        static let events = 192_000
        static let rate = 3_000

        /// The faults, in order: SIGKILL one worker; the leaders of every partition moved to broker
        /// 2 and broker 1 down; SIGSTOP another worker past its lease, SIGCONT it (its commits are
        /// fenced off); broker 1 up. Returns once every partition has finished.
        static func runUnderFaults(_ cluster: Cluster, kafka: KafkaMockCluster, statePath: String, sinkTopic: String? = nil,
                                   label: String) async throws {
            try await cluster.startCoordinator()
            for i in 1...3 { try cluster.startWorker("worker-\(i)", rate: rate) }
            let start = try await cluster.waitForStatus("3 workers hold 3/3/2 partitions", timeout: .seconds(60)) {
                $0.settled && $0.heldCounts.values.sorted() == [2, 3, 3]
            }
            try await Task.sleep(for: .milliseconds(1_500))

            let victims = start.heldCounts.filter { $0.value == 3 }.keys.sorted()
            try #require(victims.count == 2, "\(start)")
            let killed = try #require(cluster.workers[victims[0]])
            killed.kill()
            _ = await killed.wait(timeout: .seconds(10))

            // As a real cluster elects new leaders, everything broker 1 led moves before it goes
            // down: the input's partitions, and for a Kafka sink its topics and transaction
            // coordinators (the mock elects nothing by itself).
            for p in 0..<partitions { try kafka.setLeader(topic: "orders", partition: p, broker: 2) }
            if let sinkTopic {
                for p in 0..<partitions {
                    try kafka.setLeader(topic: sinkTopic, partition: p, broker: 2)
                    try kafka.setCoordinator(type: "transaction", key: "sluice.orders-revenue.\(sinkTopic).\(p)", broker: 2)
                }
                try kafka.setLeader(topic: "\(sinkTopic).sluice-progress", partition: 0, broker: 2)
            }
            try kafka.setBroker(1, up: false)

            let zombieID = victims[1]
            let zombie = try #require(cluster.workers[zombieID])
            let held = start.partitions(of: zombieID)
            zombie.signal(SIGSTOP)
            let stoppedAt = ContinuousClock.now
            _ = try await cluster.waitForStatus("the stopped \(zombieID)'s partitions have new owners", timeout: .seconds(40)) { s in
                held.allSatisfy { p in
                    guard let row = s.row(p), let owner = row.owner else { return false }
                    return owner != zombieID && row.epoch > start.epochs[p, default: 0]
                }
            }
            // Generous: a new owner recovers its other partitions first (init_transactions, the
            // progress read), on the same lanes.
            let claimed = await eventually(timeout: .seconds(60)) {
                guard let db = try? SQLiteDatabase(path: statePath),
                      let stmt = try? db.prepare("SELECT partition, epoch FROM sluice_partitions") else { return false }
                var epochs: [Int: Int64] = [:]
                while (try? stmt.step()) == true { epochs[Int(stmt.int64(0))] = stmt.int64(1) }
                return held.allSatisfy { epochs[$0, default: 0] > start.epochs[$0, default: 0] }
            }
            try #require(claimed, "the new owners did not claim \(held) in the store within 60 s\n\(cluster.diagnostics())")
            let minimumStop = Duration.milliseconds(cluster.leaseTTLMs) + .seconds(3)
            if ContinuousClock.now - stoppedAt < minimumStop { try await Task.sleep(until: stoppedAt + minimumStop) }
            zombie.signal(SIGCONT)
            try kafka.setBroker(1, up: true)

            // The woken zombie stands down one of three ways, whichever comes first: fenced by the
            // store (its next checkpoint's commit), fenced by Kafka (it woke inside a publish whose
            // store commit went through before the stop, and the new owner's init_transactions
            // took its transactional id), or stopped by its own heartbeat's answer, which no longer
            // renews the lease (it then commits nothing). The exact result below shows it added
            // nothing. Generous: on a loaded machine it first waits out librdkafka's reconnection.
            let stoodDown = await eventually(timeout: .seconds(60), every: .milliseconds(250)) {
                let log = cluster.log(zombie)
                return ["fenced off", "a newer producer initialized the id", "lease not renewed"].contains { !ClusterLog.lines(log, containing: $0).isEmpty }
            }
            #expect(stoodDown, "the zombie \(zombieID) neither was fenced nor stopped its lapsed leases:\n\(cluster.log(zombie).suffix(3_000))")
            let finished = try await cluster.waitUntilAllFinished(timeout: .seconds(180))
            print("[\(label)] killed \(victims[0]), stopped \(zombieID) (partitions \(held)), leaders moved to broker 2, broker 1 down and up; "
                  + "finished: \(finished.partitions.map { "\($0.partition)@\($0.owner ?? "-")" }.joined(separator: " "))")
            let exits = await cluster.stopGracefully()
            for (id, exit) in exits where id != "coordinator" && id != victims[0] {
                #expect(exit.exitedWith0 || id == zombieID, "\(id) did not stop cleanly: \(exit)")
            }
        }

        @Test("Cluster on Kafka: 8-partition topic into SQLite with a worker SIGKILLed, a zombie, a broker down and leaders moved; exact result",
              .timeLimit(.minutes(6)))
        func kafkaSourceUnderFaults() async throws {
            let kafka = try KafkaMockCluster(brokers: 3)
            let scratch = try ScratchDir("kafka-cluster-input")
            defer { scratch.remove() }
            let input = try await KafkaEndToEndTests.ordersTopic(scratch, cluster: kafka, events: Self.events, partitions: Self.partitions)
            let cluster = try await Cluster(label: "kafka-source", input: input,
                                            inputURI: "kafka://\(kafka.bootstrapServers)/orders?stop=latest", job: E2E.job("orders-revenue"))
            defer { cluster.tearDown() }
            try await Self.runUnderFaults(cluster, kafka: kafka, statePath: cluster.outputDB, label: "kafka cluster → sqlite")
            let verification = try Verification.verify(job: try JobSpec.load(path: E2E.job("orders-revenue")), input: "file:\(input)",
                                                       output: cluster.output)
            #expect(verification.passed, "\(verification.report())\n\(cluster.diagnostics())")
            #expect(verification.actualRows > 250, "\(verification.report())")
        }

        @Test("Cluster on Kafka into a Kafka topic, exactly once (read through Kafka's transaction rules) under the same faults; at least once raw",
              .timeLimit(.minutes(6)))
        func kafkaSinkUnderFaults() async throws {
            let kafka = try KafkaMockCluster(brokers: 3)
            let scratch = try ScratchDir("kafka-cluster-sink-input")
            defer { scratch.remove() }
            let input = try await KafkaEndToEndTests.ordersTopic(scratch, cluster: kafka, events: Self.events, partitions: Self.partitions)
            try kafka.createTopic("revenue", partitions: 8)
            try kafka.createTopic("revenue.sluice-progress", partitions: 1)
            let cluster = try await Cluster(label: "kafka-sink", input: input,
                                            inputURI: "kafka://\(kafka.bootstrapServers)/orders?stop=latest", job: E2E.job("orders-revenue"))
            defer { cluster.tearDown() }
            let statePath = cluster.scratch.at("state.db")
            let outcomes = cluster.scratch.at("transactions.log")
            let sink = "kafka://\(kafka.bootstrapServers)/revenue"
            cluster.sink = sink
            cluster.workerArguments = ["--state", statePath]
            cluster.workerEnvironment = [KafkaTransactionOutcomes.environmentVariable: outcomes]
            try await Self.runUnderFaults(cluster, kafka: kafka, statePath: statePath, sinkTopic: "revenue", label: "kafka cluster → kafka")

            // Exactly once as a read_committed consumer of a real broker would see the topic:
            // `sluice verify` reads it through the transaction-outcome log.
            let verify = try await sluice(["verify", "--job", E2E.job("orders-revenue"), "--input", "file:\(input)", "--output", sink,
                                           "--state", statePath], scratch: cluster.scratch, label: "verify",
                                          timeout: .seconds(300), environment: [KafkaTransactionOutcomes.environmentVariable: outcomes])
            #expect(verify.exitedWith0, "sluice verify through Kafka's transaction rules: \(verify)")
            // At least once on the raw topic (the mock shows aborted and open transactions too):
            // every committed message is there.
            let spec = try KafkaSpec(uri: sink)
            let log = KafkaTransactionOutcomes(path: outcomes)
            let committed = try KafkaTopicReader.read(spec: spec, outcomes: log) { Array($0) }
            let raw = try KafkaTopicReader.read(spec: spec, outcomes: nil) { Array($0) }
            print("[kafka cluster → kafka] transactions \(log.counts()); \(committed.count) committed messages, \(raw.count) on the raw topic")
            #expect(Set(raw).isSuperset(of: committed), "the raw topic lacks committed messages")
            #expect(committed.count > 250, "suspiciously few rows: \(committed.count)")
            #expect((log.counts()["init"] ?? 0) >= 8 + 3, "\(log.counts())")
        }
    }
}
