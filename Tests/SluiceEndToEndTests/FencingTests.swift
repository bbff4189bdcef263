// Two real `sluice run` processes on the same state: the newer one claims every partition with a
// higher epoch, so the older one's next commit is fenced off and it stops; the newer one finishes.

import Foundation
import SluiceStorage
import Testing

extension SluiceEndToEndTests {
    @Test("A second run on the same state fences off the first; the result is still exact")
    func secondRunFencesOffTheFirst() async throws {
        let w = Self.killWorkload
        let input = try await GeneratedInputs.shared.directory(seed: w.seed, events: w.events, partitions: w.partitions)
        let scratch = try ScratchDir("fencing")
        defer { scratch.remove() }
        let output = SinkKind.sqlite.uri(scratch)
        // 250,000 events per partition at 50,000 events/s: run A still runs after 1 s on any machine.
        let run = ["run", "--input", "file:\(input)", "--output", output, "--parallelism", "1",
                   "--checkpoint-interval-ms", "100", "--rate", "50000", "--quiet"]

        let a = try Child(run, scratch: scratch, label: "run-A")
        try await Task.sleep(for: .seconds(1))
        guard a.isRunning else {
            let exit = await a.wait()
            Issue.record("run A ended within 1 s, before run B could start: \(exit)")
            return
        }
        let b = try Child(run, scratch: scratch, label: "run-B")
        let exitA = await a.wait()
        let exitB = await b.wait()
        print("[fencing] run A: \(exitA.signaled ? "signal" : "exit") \(exitA.status): "
              + exitA.stderr.trimmingCharacters(in: .whitespacesAndNewlines))
        print("[fencing] run B: exit \(exitB.status): " + exitB.stdout.trimmingCharacters(in: .whitespacesAndNewlines))

        #expect(!exitA.timedOut && !exitA.signaled && exitA.status == 2, "run A should stop with exit 2 once fenced off: \(exitA)")
        #expect(exitA.stderr.contains("fenced"), "run A's error should say it was fenced off: \(exitA)")
        try #require(exitB.exitedWith0, "run B should complete: \(exitB)")

        let verify = try await sluice(["verify", "--input", "file:\(input)", "--output", output], scratch: scratch, label: "verify")
        #expect(verify.exitedWith0, "sluice verify after the fenced run: \(verify)")

        let counts = try sqliteSinkCounts(path: scratch.at("out.db"), table: "results")
        #expect(counts.hasNoDuplicates, "duplicates in the sink: \(counts)")
        let log = try await expectContiguousCommitLog(statePath: scratch.at("out.db"),
                                                      lineCounts: try inputLineCounts(directory: input))
        // Every partition ends with run B's commits (epoch 2); run A (epoch 1) committed only before B took over.
        let store = try CheckpointStore(path: scratch.at("out.db"))
        for p in 0..<w.partitions {
            #expect(try await store.epoch(partition: p) == 2, "partition \(p) should have epoch 2 (A = 1, B = 2)")
            let epochs = log.filter { $0.partition == p }.map(\.epoch)
            #expect(epochs == epochs.sorted() && epochs.last == 2, "partition \(p): commit epochs \(epochs)")
        }
        print("[fencing] commits by run A: \(log.filter { $0.epoch == 1 }.count), by run B: \(log.filter { $0.epoch == 2 }.count)")
    }
}
