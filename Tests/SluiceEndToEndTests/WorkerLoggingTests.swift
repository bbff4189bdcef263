// Structured logs of the worker and of `sluice run`: with --log-format json every line a worker
// prints is one JSON object with the time (RFC 3339, UTC, milliseconds), level, message, component
// and the metadata keys at the top level; and a run whose store URL carries a password never
// prints it. Also: a second SIGTERM ends a worker at once, and SIGINT stops `sluice run` cleanly.

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Parses every non-empty line of `text` as a JSON object; records an issue for each that is not.
func jsonLogLines(_ text: String, label: String, sourceLocation: SourceLocation = #_sourceLocation) -> [[String: Any]] {
    var objects: [[String: Any]] = []
    for line in text.split(separator: "\n") where !line.trimmingCharacters(in: .whitespaces).isEmpty {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
            Issue.record("\(label): a line that is not a JSON object: \(line)", sourceLocation: sourceLocation)
            continue
        }
        objects.append(object)
    }
    return objects
}

/// `2026-12-01T10:00:00.123Z`
func isRFC3339UTCWithMilliseconds(_ text: String) -> Bool {
    text.range(of: #"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"#, options: .regularExpression) != nil
}

extension SluiceEndToEndTests.ClusterTests {
    @Test("Worker --log-format json: every line is a JSON object with time, level, message, component, worker; partition lines carry partition and epoch",
          .timeLimit(.minutes(3)))
    func workerJSONLogs() async throws {
        let input = try await GeneratedInputs.shared.directory(seed: 77, events: 200_000, partitions: 4)
        let cluster = try await Cluster(label: "worker-json-logs", input: input, workerCerts: 1)
        defer { cluster.tearDown() }
        try await cluster.startCoordinator()
        let worker = try cluster.startWorker("worker-1", rate: 2_000, tls: ["--certs", cluster.certs, "--log-format", "json", "--log-level", "debug"])
        try await cluster.waitForStatus("worker-1 holds every partition", timeout: .seconds(60)) {
            $0.settled && $0.heldCounts["worker-1"] == 4
        }
        worker.signal(SIGTERM)  // releases: more partition lines
        let exit = await worker.wait(timeout: .seconds(30))
        #expect(exit.exitedWith0, "the worker should stop cleanly on SIGTERM: \(exit)")

        let lines = jsonLogLines(cluster.log(worker), label: "worker-1")
        #expect(lines.count >= 6, "too few log lines: \(cluster.log(worker))")
        var partitionLines = 0
        for line in lines {
            let time = line["time"] as? String ?? ""
            #expect(isRFC3339UTCWithMilliseconds(time), "time '\(time)' in \(line)")
            #expect(["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(line["level"] as? String ?? ""), "\(line)")
            #expect(!(line["message"] as? String ?? "").isEmpty, "\(line)")
            #expect(line["component"] as? String == "worker", "\(line)")
            #expect(line["worker"] as? String == "worker-1", "no worker metadata: \(line)")
            if (line["message"] as? String ?? "").hasPrefix("partition ") {
                partitionLines += 1
                #expect(line["partition"] is NSNumber && line["epoch"] is NSNumber,
                        "a partition line without numeric partition and epoch: \(line)")
                #expect(line["job"] as? String == "bids-tumbling", "\(line)")
            }
        }
        let messages = lines.compactMap { $0["message"] as? String }
        #expect(messages.contains { $0.contains("granted with epoch") } && messages.contains { $0.contains("released at offset") },
                "expected grant and release lines: \(messages)")
        #expect(partitionLines >= 8, "4 grants and 4 releases at least: \(partitionLines)")
        print("[worker json logs] \(lines.count) lines, \(partitionLines) with partition and epoch; e.g. \(cluster.log(worker).split(separator: "\n").first { $0.contains("granted") } ?? "")")
    }

    @Test("A second SIGTERM ends a worker at once, while its partitions would still be releasing", .timeLimit(.minutes(3)))
    func secondSignalEndsAtOnce() async throws {
        let input = try await GeneratedInputs.shared.directory(seed: 78, events: 40_000, partitions: 2)
        let cluster = try await Cluster(label: "second-signal", input: input, workerCerts: 1)
        defer { cluster.tearDown() }
        try await cluster.startCoordinator()
        let worker = try cluster.startWorker("worker-1", rate: 1_000)
        try await cluster.waitForStatus("worker-1 holds every partition", timeout: .seconds(60)) {
            $0.settled && $0.heldCounts["worker-1"] == 2
        }
        // SIGSTOP the coordinator: the releases are never answered, so the graceful leave cannot end.
        try #require(cluster.coordinator).signal(SIGSTOP)
        worker.signal(SIGTERM)
        try await Task.sleep(for: .milliseconds(500))
        #expect(worker.isRunning, "with the coordinator stopped the graceful shutdown should still be waiting")
        let second = ContinuousClock.now
        worker.signal(SIGTERM)
        let exit = await worker.wait(timeout: .seconds(20))
        let took = ContinuousClock.now - second
        try #require(cluster.coordinator).signal(SIGCONT)
        #expect(!exit.timedOut && exit.status == 128 + SIGTERM, "the second SIGTERM should end the worker with 143: \(exit)")
        #expect(took < .seconds(5), "the second signal took \(took) to end the worker")
        #expect(cluster.log(worker).contains("second signal"), "\(cluster.log(worker).suffix(2_000))")
    }
}

extension SluiceEndToEndTests {
    @Test("sluice run stops cleanly on SIGINT: every partition checkpointed, exit 0; a rerun resumes and finishes", .timeLimit(.minutes(3)))
    func runStopsOnSIGINT() async throws {
        let input = try await GeneratedInputs.shared.directory(seed: 79, events: 80_000, partitions: 4)
        let scratch = try ScratchDir("run-sigint")
        defer { scratch.remove() }
        let output = "sqlite:" + scratch.at("out.db")
        let args = ["run", "--input", "file:\(input)", "--output", output, "--parallelism", "2", "--rate", "2000", "--quiet"]
        let child = try Child(args, scratch: scratch, label: "run-interrupted")
        try await Task.sleep(for: .seconds(3))
        #expect(child.isRunning, "the run ended before SIGINT")
        let signalled = ContinuousClock.now
        child.signal(SIGINT)
        let exit = await child.wait(timeout: .seconds(30))
        #expect(exit.exitedWith0, "sluice run should exit 0 on SIGINT: \(exit)")
        #expect(ContinuousClock.now - signalled < .seconds(15))
        #expect(exit.stdout.contains("stopped"), "\(exit)")
        let store = scratch.at("out.db")
        let checkpoints = try storedCheckpoints(store)
        #expect(checkpoints.count == 4 && checkpoints.values.allSatisfy { $0.count >= 1 && !$0.finished },
                "every partition should hold a last, unfinished checkpoint: \(checkpoints)")

        let rerun = try await sluice(["run", "--input", "file:\(input)", "--output", output, "--quiet"], scratch: scratch, label: "run-resumed")
        #expect(rerun.exitedWith0 && rerun.stdout.contains("done:"), "\(rerun)")
        let verify = try await sluice(["verify", "--input", "file:\(input)", "--output", output], scratch: scratch, label: "verify")
        #expect(verify.exitedWith0, "\(verify)")
    }
}
