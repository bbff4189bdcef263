import Foundation
import SluiceDrivers
import Testing

/// `sluice kafka check` against librdkafka's mock cluster, which implements transactions as an API
/// only: the check must find the round trip but report isolation, abort on takeover and fencing
/// missing. That the check fails here is what shows it can fail.
@Suite struct KafkaCheckTests {
    @Test(.timeLimit(.minutes(1))) func theMockLacksIsolationAndFencing() throws {
        let cluster = try KafkaMockCluster(brokers: 3)
        try cluster.createTopic("sluice-check", partitions: 4)
        let report = try KafkaClusterCheck(options: .init(bootstrap: cluster.bootstrapServers, topic: "sluice-check")).run()
        let outcomes = Dictionary(uniqueKeysWithValues: report.outcomes.map { ($0.id, $0.passed) })
        #expect(outcomes == ["committed-visible": true, "aborted-invisible": false, "open-invisible": false,
                             "takeover-aborts-open": false, "zombie-fenced": false, "zombie-invisible": false], "\(report.lines)")
        let guarantees = Dictionary(uniqueKeysWithValues: report.guarantees.map { ($0.name, $0.present) })
        #expect(guarantees == ["transactions": true, "read_committed isolation": false, "abort on takeover": false, "zombie fencing": false])
        #expect(report.exitCode == 1)
        #expect(report.lines.contains("read_committed isolation: MISSING — aborted and open transactions are visible; Sluice's exactly-once sink cannot be trusted on this cluster"))
        #expect(report.lines.contains { $0.hasPrefix("zombie fencing: MISSING") })
        #expect(report.lines.contains("summary: 1 of 6 checks passed"))
    }

    @Test func aMissingTopicOrAnUnreachableBootstrapIsASetupError() throws {
        let cluster = try KafkaMockCluster(brokers: 1)
        let missing = #expect(throws: KafkaClusterCheck.SetupError.self) {
            try KafkaClusterCheck(options: .init(bootstrap: cluster.bootstrapServers, topic: "absent")).run()
        }
        #expect(missing?.description.contains("topic 'absent' does not exist") == true)
        var options = KafkaClusterCheck.Options(bootstrap: "127.0.0.1:1", topic: "sluice-check")
        options.operationTimeoutMs = 2_000
        let unreachable = #expect(throws: KafkaClusterCheck.SetupError.self) { try KafkaClusterCheck(options: options).run() }
        #expect(unreachable?.description.contains("cannot reach Kafka at bootstrap 127.0.0.1:1") == true)
    }

    /// The built binary: prints the report and exits 1 on the mock; 2 for bad arguments, a
    /// missing topic or an unreachable bootstrap.
    @Test(.timeLimit(.minutes(2))) func theBinaryExits1OnTheMockAnd2ForBadInput() async throws {
        let scratch = try KafkaScratch("check")
        defer { scratch.remove() }
        let cluster = try KafkaMockCluster(brokers: 3)
        try cluster.createTopic("sluice-check", partitions: 4)
        let boot = cluster.bootstrapServers

        let run = try await runSluice(["kafka", "check", "--bootstrap", boot], scratch: scratch, label: "mock")
        #expect(run.status == 1, "\(run)")
        #expect(run.stdout.contains("PASS  committed-visible:"))
        #expect(run.stdout.contains("FAIL  zombie-fenced:"))
        #expect(run.stdout.contains("read_committed isolation: MISSING"))
        #expect(run.stdout.contains("verdict: FAIL"))

        let missing = try await runSluice(["kafka", "check", "--bootstrap", boot, "--topic", "absent"], scratch: scratch, label: "missing")
        #expect(missing.status == 2 && missing.stderr.contains("topic 'absent' does not exist"), "\(missing)")
        let unreachable = try await runSluice(["kafka", "check", "--bootstrap", "127.0.0.1:1", "--timeout", "2"], scratch: scratch, label: "unreachable")
        #expect(unreachable.status == 2 && unreachable.stderr.contains("cannot reach Kafka at bootstrap 127.0.0.1:1"), "\(unreachable)")
        let malformed = try await runSluice(["kafka", "check", "--bootstrap", "localhost"], scratch: scratch, label: "malformed")
        #expect(malformed.status == 2 && malformed.stderr.contains("--bootstrap must be HOST:PORT"), "\(malformed)")
        let property = try await runSluice(["kafka", "check", "--bootstrap", boot, "--property", "sasl.password"], scratch: scratch, label: "property")
        #expect(property.status == 2 && property.stderr.contains("--property must be name=value"), "\(property)")
        let unknown = try await runSluice(["kafka", "check", "--bootstrap", boot, "--property", "no.such.property=1"], scratch: scratch, label: "unknown")
        #expect(unknown.status == 2 && unknown.stderr.contains("no.such.property"), "\(unknown)")
    }
}
