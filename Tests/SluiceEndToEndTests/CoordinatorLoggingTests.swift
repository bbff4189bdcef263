// `sluice coordinator --log-format json`: every line it writes to standard error is one JSON
// object with `time` (RFC 3339 UTC, milliseconds), `level`, `message`, `component`, and the
// metadata (`coordinator`, and `worker`, `partition`, `epoch` on lease lines) at the top level.
// And SIGTERM stops it gracefully (the service group: step down, resign, stop the server), exit 0.

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension SluiceEndToEndTests.ClusterTests {
    @Test("Coordinator --log-format json: every stderr line is a JSON object with time, level, message, component and top-level metadata; SIGTERM exits 0",
          .timeLimit(.minutes(3)))
    func coordinatorLogsJSONLines() async throws {
        let cluster = try await Cluster(label: "coordinator-json-logs", input: "", inputURI: Self.tinyInput)
        defer { cluster.tearDown() }
        cluster.coordinatorExtraArguments = ["--log-format", "json", "--log-level", "debug"]
        let coordinator = try await cluster.startCoordinator()
        try cluster.startWorker("worker-1", rate: nil)
        try await cluster.waitForStatus("both partitions granted", timeout: .seconds(60)) { $0.owners.count == 2 }
        coordinator.signal(SIGTERM)
        let exit = await coordinator.wait(timeout: .seconds(30))
        #expect(exit.exitedWith0, "SIGTERM did not stop the coordinator cleanly: \(exit)")

        let lines = exit.stderr.split(separator: "\n")
        #expect(lines.count >= 4, "too few log lines: \(exit.stderr)")
        let time = try Regex(#"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"#)
        var objects: [[String: Any]] = []
        for line in lines {
            let parsed = try? JSONSerialization.jsonObject(with: Data(line.utf8))
            guard let object = parsed as? [String: Any] else {
                Issue.record("not a JSON object: \(line)")
                continue
            }
            objects.append(object)
            let stamp = object["time"] as? String ?? ""
            #expect(stamp.wholeMatch(of: time) != nil, "time is not RFC 3339 UTC with milliseconds: \(line)")
            #expect(["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(object["level"] as? String ?? ""), "\(line)")
            #expect(!(object["message"] as? String ?? "").isEmpty, "no message: \(line)")
            #expect(object["component"] is String, "no component: \(line)")
        }
        let ours = objects.filter { $0["component"] as? String == "coordinator" }
        #expect(ours.allSatisfy { $0["coordinator"] as? String == "coordinator-main" }, "a coordinator line without its coordinator metadata")
        let grant = ours.first { ($0["message"] as? String ?? "").hasPrefix("grant partition") }
        #expect(grant?["worker"] as? String == "worker-1", "no grant line with worker metadata: \(exit.stderr.suffix(2_000))")
        #expect(grant?["partition"] is NSNumber && grant?["epoch"] is NSNumber, "partition and epoch are not numbers at the top level: \(String(describing: grant))")
        #expect(ours.contains { ($0["message"] as? String ?? "").hasPrefix("leading (leader epoch") })
        #expect(ours.contains { ($0["message"] as? String ?? "") == "resigned the leadership" }, "the graceful stop did not resign: \(exit.stderr.suffix(2_000))")
    }
}
