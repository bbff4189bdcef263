// `sluice chaos run` on SIGINT: it stops the cluster it started, writes the report it can (marked
// interrupted), and exits 130, instead of dying with its coordinator and workers left running.

import Foundation
import Testing
@testable import SluiceChaos

extension ChaosEndToEndTests {
/// Nested in the serialized ChaosEndToEndTests, so that no two clusters share the machine.
@Suite struct Interrupt {
    /// Processes whose command line mentions `marker` (the run's directory: every child gets it in
    /// `--certs`), other than this test's own.
    static func processes(mentioning marker: String) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { Int32($0) }.filter { pid in
            guard pid != getpid(), let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            return String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self).contains(marker)
        }
    }

    @Test func sigintStopsTheClusterAndWritesAnInterruptedReport() async throws {
        let root = try ChaosEndToEndTests.scratch("sigint")
        let suite = (root as NSString).appendingPathComponent("long.yaml")
        let out = (root as NSString).appendingPathComponent("run")
        // Throttled to last far longer than the test waits: only the signal can end it in time.
        try """
            name: long
            topology: {workers: 2, partitions: 4, lease_ttl_ms: 6000, heartbeat_ms: 1000}
            workload: {seed: 5, events: 40000, seconds: 300}
            bounds: {recovery_s: 30, run_s: 400}
            faults:
              - {at: 200, kind: kill_worker, target: worker-2, restart_after: 2}
            """.write(toFile: suite, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try ChaosEndToEndTests.binary())
        process.arguments = ["chaos", "run", suite, "--out", out, "--quiet"]
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        _ = FileManager.default.createFile(atPath: out + ".stderr", contents: nil)
        process.standardError = FileHandle(forWritingAtPath: out + ".stderr")
        try process.run()
        defer {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            for pid in Self.processes(mentioning: out) { kill(pid, SIGKILL) }
        }

        // Wait until both workers run (their logs exist and the cluster has had time to grant).
        let started = Date()
        let workerLog = (out as NSString).appendingPathComponent("logs/worker-2.log")
        while !FileManager.default.fileExists(atPath: workerLog), process.isRunning, Date().timeIntervalSince(started) < 120 {
            try await Task.sleep(for: .milliseconds(200))
        }
        try #require(FileManager.default.fileExists(atPath: workerLog), "the cluster did not start in 120 s; see \(out).stderr")
        try await Task.sleep(for: .seconds(5))
        try #require(process.isRunning, "the run ended before the signal; see \(out).stderr")
        #expect(!Self.processes(mentioning: out).isEmpty, "the cluster's processes are visible before the signal")

        process.interrupt()  // SIGINT to the harness only (the children are not signalled by the test)
        let signalled = Date()
        while process.isRunning, Date().timeIntervalSince(signalled) < 120 { try await Task.sleep(for: .milliseconds(200)) }
        try #require(!process.isRunning, "sluice chaos run still running 120 s after SIGINT; see \(out).stderr")
        process.waitUntilExit()
        #expect(process.terminationStatus == 130)
        #expect(Date().timeIntervalSince(signalled) < 90, "stopping took \(Int(Date().timeIntervalSince(signalled))) s")

        // Nothing of the cluster is left running.
        var left = Self.processes(mentioning: out)
        for _ in 0..<50 where !left.isEmpty {
            try await Task.sleep(for: .milliseconds(200))
            left = Self.processes(mentioning: out)
        }
        #expect(left.isEmpty, "processes of the run still alive after the harness exited: \(left)")

        // The report of what ran, marked interrupted.
        let data = try #require(FileManager.default.contents(atPath: (out as NSString).appendingPathComponent("report.json")),
                                "no report.json after SIGINT; see \(out).stderr")
        let report = try JSONDecoder().decode(ChaosReport.self, from: data)
        #expect(report.interrupted == true)
        #expect(!report.passed)
        #expect(!report.finishedInTime)
        let interrupted = try #require(report.checks.first { $0.name == "run not interrupted" })
        #expect(!interrupted.passed)
        #expect(report.runSeconds < 200, "the run went on for \(report.runSeconds) s after the signal")
        for name in ["report.md", "timeline.svg", "observations.json"] {
            #expect(FileManager.default.fileExists(atPath: (out as NSString).appendingPathComponent(name)), "\(name) written")
        }
        try? FileManager.default.removeItem(atPath: root)
    }
}
}
