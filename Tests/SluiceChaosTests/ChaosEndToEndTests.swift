// The harness against real processes: the smoke suite passes on a sound build, and a build with a
// deliberate bug (the fenced commit skipping its epoch check, a debug-only switch) fails the checks.

import Foundation
import Testing
@testable import SluiceChaos

@Suite(.serialized) struct ChaosEndToEndTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    /// `$SLUICE_BIN`, else `.build/debug/sluice`.
    static func binary() throws -> String {
        let path = ProcessInfo.processInfo.environment["SLUICE_BIN"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (root as NSString).appendingPathComponent(".build/debug/sluice")
        try #require(FileManager.default.isExecutableFile(atPath: path), "no sluice binary at \(path): run `swift build` first")
        return path
    }

    static func scratch(_ label: String) throws -> String {
        let path = (FileManager.default.temporaryDirectory.path as NSString)
            .appendingPathComponent("sluice-chaos-\(label)-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Runs `sluice chaos run SUITE --out DIR --quiet`, killed if it outlives `timeout`.
    static func chaosRun(suite: String, out: String, environment: [String: String] = [:], timeout: Double) async throws -> (status: Int32, report: ChaosReport?) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try binary())
        process.arguments = ["chaos", "run", suite, "--out", out, "--quiet"]
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        _ = FileManager.default.createFile(atPath: out + ".stderr", contents: nil)
        process.standardError = FileHandle(forWritingAtPath: out + ".stderr")
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { try await Task.sleep(for: .milliseconds(200)) }
        if process.isRunning {
            process.interrupt()
            try await Task.sleep(for: .seconds(3))
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            Issue.record("sluice chaos run outlived \(Int(timeout)) s; see \(out)")
        }
        process.waitUntilExit()
        let data = FileManager.default.contents(atPath: (out as NSString).appendingPathComponent("report.json"))
        return (process.terminationStatus, try data.map { try JSONDecoder().decode(ChaosReport.self, from: $0) })
    }

    @Test func theSmokeSuitePassesOnASoundBuild() async throws {
        let out = try Self.scratch("smoke")
        let (status, report) = try await Self.chaosRun(suite: (Self.root as NSString).appendingPathComponent("chaos/suites/smoke.yaml"),
                                                       out: out, timeout: 300)
        let r = try #require(report, "no report in \(out)")
        for check in r.checks { #expect(check.passed, "\(check.name): \(check.evidence)") }
        #expect(status == 0)
        #expect(r.faults.count == 4)
        #expect(r.faults.allSatisfy { !$0.notes.isEmpty })
        for name in ["report.md", "timeline.svg", "input/part-00000.csv", "results.db", "logs/coordinator.log"] {
            #expect(FileManager.default.fileExists(atPath: (out as NSString).appendingPathComponent(name)), "\(name) kept")
        }
        if status == 0 { try? FileManager.default.removeItem(atPath: out) }
    }

    /// A worker cut off from the coordinator goes on committing (by design, safe because commits
    /// are fenced). With the epoch check skipped, its commits land after the partition has moved:
    /// the fencing check must catch it.
    @Test func theChecksCatchACommitThatSkipsTheEpochCheck() async throws {
        let out = try Self.scratch("broken")
        let suite = (out as NSString).appendingPathComponent("zombie.yaml")
        try """
            name: zombie
            topology: {workers: 3, partitions: 8, lease_ttl_ms: 4000, heartbeat_ms: 1000}
            workload: {seed: 3, events: 160000, seconds: 30}
            bounds: {recovery_s: 30, run_s: 110}
            faults:
              - {at: 8, kind: cut_worker, target: worker-1, mode: blackhole, direction: both, for: 12}
            """.write(toFile: suite, atomically: true, encoding: .utf8)
        let (status, report) = try await Self.chaosRun(suite: suite, out: (out as NSString).appendingPathComponent("run"),
                                                       environment: ["SLUICE_TEST_FAULT": "skip-epoch-check"], timeout: 240)
        let r = try #require(report, "no report in \(out)")
        try #require(r.build == "debug", "the test-only fault exists in debug builds only")
        #expect(status == 1)
        let fencing = try #require(r.checks.first { $0.name == "no commit from a fenced epoch" })
        #expect(!fencing.passed, "the fenced-epoch check let the broken build through: \(fencing.evidence)")
        #expect(fencing.evidence.contains { $0.contains("had claimed the partition (a fenced commit was accepted)") })
        try? FileManager.default.removeItem(atPath: out)
    }
}

extension ChaosEndToEndTests {
    /// Kafka in and out (`sluice dev kafka` started by the harness): a worker killed, a broker down
    /// (leaders and coordinators moved off it first), a leader moved and failing Produce requests;
    /// the result topic read through the transaction-outcome log equals the oracle, and the raw
    /// topic holds every row. About 40 s.
    @Test func aShortKafkaSuitePasses() async throws {
        let out = try Self.scratch("kafka")
        let suite = (out as NSString).appendingPathComponent("kafka-smoke.yaml")
        try """
            name: kafka-smoke
            source: kafka
            sink: kafka
            topology: {workers: 2, partitions: 4, lease_ttl_ms: 4000, heartbeat_ms: 1000}
            workload: {seed: 21, events: 48000, keys: 2000, seconds: 16}
            bounds: {recovery_s: 20, run_s: 90}
            faults:
              - {at: 4, kind: kill_worker, target: worker-2, restart_after: 2}
              - {at: 7, kind: kafka_broker_down, broker: 1, for: 4}
              - {at: 9, kind: kafka_leader_change, topic: output, partition: 1, broker: 3}
              - {at: 12, kind: kafka_request_errors, api: produce, count: 10}
            """.write(toFile: suite, atomically: true, encoding: .utf8)
        let run = (out as NSString).appendingPathComponent("run")
        let (status, report) = try await Self.chaosRun(suite: suite, out: run, timeout: 150)
        let r = try #require(report, "no report in \(run)")
        for check in r.checks { #expect(check.passed, "\(check.name): \(check.evidence)") }
        #expect(status == 0)
        #expect(r.faults.count == 4)
        #expect(r.sink?.hasPrefix("kafka") == true && r.source?.hasPrefix("kafka") == true)
        #expect(r.checks.contains { $0.name == "at least once on the raw topic" })
        let down = try #require(r.faults.first { $0.kind == .kafkaBrokerDown })
        #expect(down.notes.contains("broker 1 down") && down.notes.contains { $0.hasPrefix("broker 1 up") }, "\(down.notes)")
        for name in ["state.db", "kafka-transactions.log", "kafka-results.jsonl", "logs/kafka.log", "report.md", "timeline.svg"] {
            #expect(FileManager.default.fileExists(atPath: (run as NSString).appendingPathComponent(name)), "\(name) kept")
        }
        if status == 0 { try? FileManager.default.removeItem(atPath: out) }
    }
}

extension ChaosEndToEndTests {
/// The harness on PostgreSQL, against the test server (`SLUICE_TEST_POSTGRES_URL`, set by
/// scripts/test; see Tests/SluiceEndToEndTests/Postgres/TestPostgres.swift): leases, checkpoints
/// and sink in a fresh database there, a worker killed, and one cut off from the database long
/// enough that its store gives up: its partitions fail, move to the others, and come back.
/// Nested in the serialized ChaosEndToEndTests, so that no two clusters share the machine (and
/// scripts/test runs it with them, after the rest).
@Suite(.enabled(if: ProcessInfo.processInfo.environment["SLUICE_SKIP_POSTGRES_TESTS"] != "1",
                "SLUICE_SKIP_POSTGRES_TESTS=1: PostgreSQL tests skipped on purpose"))
struct OnPostgres {
    static func serverURL() throws -> String {
        guard let url = ProcessInfo.processInfo.environment["SLUICE_TEST_POSTGRES_URL"], !url.isEmpty else {
            throw ChaosRefusal("""
                SLUICE_TEST_POSTGRES_URL is not set, so there is no PostgreSQL server to run the suite against.
                Run scripts/test (it starts a throwaway server), or:
                  scripts/postgres-test-server start && eval "$(scripts/postgres-test-server env)" && swift test --filter ChaosEndToEndTests
                To skip these tests on purpose, set SLUICE_SKIP_POSTGRES_TESTS=1.
                """)
        }
        return url
    }

    @Test func aShortPostgresSuitePassesAndAFailingStoreMakesNoGrantStorm() async throws {
        let out = try ChaosEndToEndTests.scratch("pg")
        let suite = (out as NSString).appendingPathComponent("pg-smoke.yaml")
        try """
            name: pg-smoke
            store: \(try Self.serverURL())
            topology: {workers: 3, partitions: 6, lease_ttl_ms: 4000, heartbeat_ms: 1000, store_retry_ms: 2000}
            workload: {seed: 9, events: 180000, keys: 5000, seconds: 40}
            bounds: {recovery_s: 20, run_s: 140}
            faults:
              - {at: 6, kind: kill_worker, target: worker-2, restart_after: 3}
              - {at: 14, kind: cut_worker_from_store, target: worker-3, mode: reset, for: 10}
              - {at: 28, kind: cut_worker_from_store, target: worker-1, mode: blackhole, direction: both, for: 4}
            """.write(toFile: suite, atomically: true, encoding: .utf8)
        let run = (out as NSString).appendingPathComponent("run")
        let (status, report) = try await ChaosEndToEndTests.chaosRun(suite: suite, out: run, timeout: 170)
        let r = try #require(report, "no report in \(run)")
        for check in r.checks { #expect(check.passed, "\(check.name): \(check.evidence)") }
        #expect(status == 0)
        #expect(r.store == "postgres")
        #expect(r.faults.count == 3)
        for name in ["store.sql", "input/part-00000.csv", "logs/coordinator.log", "report.md"] {
            #expect(FileManager.default.fileExists(atPath: (run as NSString).appendingPathComponent(name)), "\(name) kept")
        }
        // The claims are logged in PostgreSQL too: the fencing check had some to check against.
        let fencing = try #require(r.checks.first { $0.name == "no commit from a fenced epoch" })
        #expect(fencing.evidence.first?.contains("against 0 claims") == false, "\(fencing.evidence)")
        let dump = try String(contentsOfFile: (run as NSString).appendingPathComponent("store.sql"), encoding: .utf8)
        #expect(dump.contains("sluice_commits") && dump.contains("sluice_claims"))
        // worker-3's store refused it for 10 s, past its 2 s retry limit: it reported failures (not
        // fencings), and the coordinator backed off instead of regranting at once.
        let coordinatorLog = try ChaosEndToEndTests.logs(run, prefix: "coordinator")
        let failures = coordinatorLog.count { $0.contains("worker-3 failed partition") }
        let grants = coordinatorLog.count { $0.contains("coordinator: grant partition") }
        #expect(failures >= 1, "worker-3 reported no failure: the cut did not reach its store")
        #expect(grants <= 60, "\(grants) grants in a 40 s run with 6 partitions: a retry storm")
        if status == 0 { try? FileManager.default.removeItem(atPath: out) }
    }
}
}

extension ChaosEndToEndTests {
    /// The lines of every log of a process (`coordinator.log`, `coordinator.2.log`, …).
    static func logs(_ run: String, prefix: String) throws -> [Substring] {
        let dir = (run as NSString).appendingPathComponent("logs")
        return try FileManager.default.contentsOfDirectory(atPath: dir)
            .filter { $0.hasPrefix(prefix) && $0.hasSuffix(".log") }
            .flatMap { try String(contentsOfFile: (dir as NSString).appendingPathComponent($0), encoding: .utf8).split(separator: "\n") }
    }
}
