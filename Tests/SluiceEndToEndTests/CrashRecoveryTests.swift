// Crash and resume with real processes: SIGKILL `sluice run` at random moments, run it again with
// the same arguments, and check the sink against the oracle (`sluice verify`) and directly.

import Foundation
import SluiceStorage
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The two sinks of `sluice run`.
enum SinkKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite, file

    var testDescription: String { rawValue }

    /// The `--output` URI for a sink in `scratch`.
    func uri(_ scratch: ScratchDir) -> String {
        switch self {
        case .sqlite: "sqlite:" + scratch.at("out.db")
        case .file: "file:" + scratch.at("out")
        }
    }

    /// Where the checkpoint store lives when no `--state` is given.
    func statePath(_ scratch: ScratchDir) -> String {
        switch self {
        case .sqlite: scratch.at("out.db")
        case .file: (scratch.at("out") as NSString).appendingPathComponent("_sluice_state.db")
        }
    }

    /// Counts rows, late and dead letters in the sink, to check for duplicates without the oracle.
    func counts(_ scratch: ScratchDir, table: String) throws -> SinkCounts {
        switch self {
        case .sqlite: try sqliteSinkCounts(path: scratch.at("out.db"), table: table)
        case .file: try fileSinkCounts(directory: scratch.at("out"))
        }
    }
}

extension SluiceEndToEndTests {
    /// The reference workload of the kill tests.
    static let killWorkload = (seed: UInt64(20_260_101), events: 2_000_000, partitions: 8)

    @Test("SIGKILL sluice run at random moments, resume, exactly once (2,000,000 events)", arguments: SinkKind.allCases)
    func killAndResume(sink: SinkKind) async throws {
        let w = Self.killWorkload
        let input = try await GeneratedInputs.shared.directory(seed: w.seed, events: w.events, partitions: w.partitions)
        let scratch = try ScratchDir("kill-\(sink)")
        defer { scratch.remove() }
        let output = sink.uri(scratch)
        // Throttled to 20,000 events/s per partition, so that the 250,000 events of each partition
        // last at least 12.5 s on any machine: a fast one finished the unthrottled run in under 3 s,
        // before the fourth kill. Each block is still processed and committed at full speed.
        let run = ["run", "--input", "file:\(input)", "--output", output, "--parallelism", "2",
                   "--checkpoint-interval-ms", "200", "--rate", "20000", "--quiet"]

        // Delays of 0.4–3 s from our own seeded generator. Seed 98 gives 679, 792, 794, 848, 1365, 829,
        // 1360, … ms: the first four add up to 3.1 s, a quarter of the throttled run.
        let report = try await killRepeatedly(run, scratch: scratch, label: "run", seed: 98, delaysMs: 400...3_000,
                                              targetKills: 6, maxAttempts: 10)
        print("[kill-and-resume, \(sink) sink] \(report)")
        #expect(report.killedAfterMs.count >= 4, "only \(report) before the run finished; expected at least 4 kills")

        let final = try await sluice(run, scratch: scratch, label: "run-final")
        try #require(final.exitedWith0, "the run after the kills did not complete: \(final)")
        print("[kill-and-resume, \(sink) sink] final run: \(final.stdout.trimmingCharacters(in: .whitespacesAndNewlines))")

        let verify = try await sluice(["verify", "--input", "file:\(input)", "--output", output], scratch: scratch, label: "verify")
        #expect(verify.exitedWith0, "sluice verify after \(report): \(verify)")
        print("[kill-and-resume, \(sink) sink] verify: \(verify.stdout.trimmingCharacters(in: .whitespacesAndNewlines))")

        // Independent checks: no (window, key) twice, no late event or dead letter twice, a commit log
        // that covers every line of every partition once, nothing left staged.
        let counts = try sink.counts(scratch, table: "results")
        #expect(counts.hasNoDuplicates, "duplicates in the sink: \(counts)")
        #expect(counts.rows > 100_000, "suspiciously few rows: \(counts)")
        let lines = try inputLineCounts(directory: input)
        #expect(lines.count == w.partitions && lines.reduce(0, +) == Int64(w.events))
        let log = try await expectContiguousCommitLog(statePath: sink.statePath(scratch), lineCounts: lines)
        #expect(killedAttemptsThatCommitted(log) >= 4, "kills before any commit of their attempt: \(report)")
        if sink == .file {
            let staged = try fileSinkLines(directory: scratch.at("out")).staged
            #expect(staged.isEmpty, "files left in .staging after a complete run: \(staged.prefix(5))")
        }
    }

    @Test("SIGKILL and resume the sliding and session jobs (300,000 events)",
          arguments: [("bids-sliding", "bids_sliding"), ("bids-session", "bids_session")])
    func killAndResumeOtherWindows(job: String, table: String) async throws {
        let input = try await GeneratedInputs.shared.directory(seed: 77, events: 300_000, partitions: 8)
        let scratch = try ScratchDir("kill-\(job)")
        defer { scratch.remove() }
        let output = SinkKind.sqlite.uri(scratch)
        let jobPath = E2E.job(job)
        try #require(FileManager.default.fileExists(atPath: jobPath), "no job spec at \(jobPath)")
        // 37,500 events per partition at 10,000 events/s: at least 3.75 s on any machine (unthrottled,
        // a fast one ran these jobs in about 1 s).
        let run = ["run", "--job", jobPath, "--input", "file:\(input)", "--output", output, "--parallelism", "1",
                   "--checkpoint-interval-ms", "100", "--rate", "10000", "--quiet"]

        // Two kills early in the run.
        let report = try await killRepeatedly(run, scratch: scratch, label: "run", seed: 5, delaysMs: 300...800,
                                              targetKills: 2, maxAttempts: 6)
        print("[kill-and-resume, \(job)] \(report)")
        #expect(report.killedAfterMs.count == 2, "expected 2 kills of a running process: \(report)")

        let final = try await sluice(run, scratch: scratch, label: "run-final")
        try #require(final.exitedWith0, "the run after the kills did not complete: \(final)")
        let verify = try await sluice(["verify", "--job", jobPath, "--input", "file:\(input)", "--output", output],
                                      scratch: scratch, label: "verify")
        #expect(verify.exitedWith0, "sluice verify (\(job)) after \(report): \(verify)")
        print("[kill-and-resume, \(job)] verify: \(verify.stdout.trimmingCharacters(in: .whitespacesAndNewlines))")

        let counts = try sqliteSinkCounts(path: scratch.at("out.db"), table: table)
        #expect(counts.hasNoDuplicates, "duplicates in the sink: \(counts)")
        #expect(counts.rows > 1_000, "suspiciously few rows: \(counts)")
        let log = try await expectContiguousCommitLog(statePath: SinkKind.sqlite.statePath(scratch),
                                                      lineCounts: try inputLineCounts(directory: input))
        #expect(killedAttemptsThatCommitted(log) == 2, "kills before any commit of their attempt: \(report)")
    }

    /// How a stored checkpoint is damaged: its state blob, or the fields of its row beside the blob
    /// (finished set, position, offset or watermark moved, epoch changed), which the blob's own CRC
    /// does not cover.
    enum Damage: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case blob, fields
        var testDescription: String { rawValue }
    }

    @Test("A corrupt newest checkpoint is rolled back and the run falls back to the one before",
          arguments: SinkKind.allCases, Damage.allCases)
    func corruptCheckpointFallsBack(sink: SinkKind, damage: Damage) async throws {
        let partitions = 8
        let input = try await GeneratedInputs.shared.directory(seed: 4_242, events: 1_000_000, partitions: partitions)
        let scratch = try ScratchDir("corrupt-\(sink)-\(damage)")
        defer { scratch.remove() }
        let output = sink.uri(scratch)
        let statePath = sink.statePath(scratch)
        // 125,000 events per partition at 25,000 events/s: at least 5 s on any machine.
        let run = ["run", "--input", "file:\(input)", "--output", output, "--parallelism", "1",
                   "--checkpoint-interval-ms", "100", "--rate", "25000", "--quiet"]

        // Kill after about 2 s, once at least two partitions hold two unfinished checkpoints (so that
        // one can fall back to the older one and one can lose both).
        let child = try Child(run, scratch: scratch, label: "run-killed")
        let started = ContinuousClock.now
        try await Task.sleep(for: .seconds(2))
        var stored: [Int: (count: Int, finished: Bool)] = [:]
        for _ in 0..<150 where child.isRunning {  // at most ~15 s more
            stored = (try? storedCheckpoints(statePath)) ?? [:]
            if stored.values.filter({ $0.count == 2 && !$0.finished }).count >= 2 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        child.kill()
        let killed = await child.wait()
        try #require(killed.signaled && killed.status == SIGKILL && !killed.timedOut,
                     "the run was not running any more when it was to be killed: \(killed)")
        print("[corrupt, \(sink) sink] killed after \(ContinuousClock.now - started); checkpoints per partition: "
              + stored.keys.sorted().map { "\($0): \(stored[$0]!.count)" }.joined(separator: ", "))

        // Damage the newest checkpoint of every partition (three ways), and both checkpoints of the
        // first partition that has two, so that it must start over.
        var corrupted = 0
        var touched: [Int] = []
        var startsOver: Int?
        do {
            let store = try CheckpointStore(path: statePath)
            for p in 0..<partitions {
                let checkpoints = try await store.checkpoints(partition: p)
                guard !checkpoints.isEmpty else { continue }
                var targets = [checkpoints[0]]
                if startsOver == nil, checkpoints.count == 2, !checkpoints[1].finished {
                    startsOver = p
                    targets = checkpoints
                }
                for (i, checkpoint) in targets.enumerated() {
                    switch damage {
                    case .blob:
                        try await store.overwriteState(partition: p, seq: checkpoint.seq,
                                                       state: damaged(checkpoint.state, style: p + i))
                    case .fields:
                        try editRow(statePath, partition: p, seq: checkpoint.seq, style: p + i)
                    }
                    corrupted += 1
                }
                touched.append(p)
            }
        }
        let fullyCorrupt = try #require(startsOver, "no partition had two checkpoints: \(stored)")
        print("[corrupt, \(sink) sink] damaged \(corrupted) checkpoints in partitions \(touched); partition \(fullyCorrupt) lost both")

        let resumed = try await sluice(run, scratch: scratch, label: "run-resumed")
        try #require(resumed.exitedWith0, "the run after the corruption did not complete: \(resumed)")
        let log = resumed.stderr.split(separator: "\n")
        let fallbacks = log.filter { $0.contains("falling back") }
        let rollbacks = log.filter { $0.contains("rolled back") }
        print("[corrupt, \(sink) sink] resumed run said:\n  " + (fallbacks + rollbacks).joined(separator: "\n  "))
        #expect(fallbacks.count == corrupted, "expected one 'falling back' per damaged checkpoint (\(corrupted)): \(resumed.stderr)")
        #expect(rollbacks.count == touched.count, "expected one 'rolled back' per damaged partition (\(touched)): \(resumed.stderr)")
        #expect(rollbacks.contains { $0.contains("partition \(fullyCorrupt): rolled back to checkpoint 0") },
                "partition \(fullyCorrupt) lost both checkpoints and should start over: \(resumed.stderr)")

        let verify = try await sluice(["verify", "--input", "file:\(input)", "--output", output], scratch: scratch, label: "verify")
        #expect(verify.exitedWith0, "sluice verify after falling back: \(verify)")
        let counts = try sink.counts(scratch, table: "results")
        #expect(counts.hasNoDuplicates, "duplicates in the sink: \(counts)")
        _ = try await expectContiguousCommitLog(statePath: statePath, lineCounts: try inputLineCounts(directory: input))
    }
}

/// Per partition: how many checkpoints the store holds and whether the newest says finished.
func storedCheckpoints(_ statePath: String) throws -> [Int: (count: Int, finished: Bool)] {
    guard FileManager.default.fileExists(atPath: statePath) else { return [:] }
    let db = try SQLiteDatabase(path: statePath)
    let stmt = try db.prepare("SELECT partition, COUNT(*), MAX(finished) FROM sluice_checkpoints GROUP BY partition")
    var result: [Int: (count: Int, finished: Bool)] = [:]
    while try stmt.step() {
        result[Int(stmt.int64(0))] = (Int(stmt.int64(1)), stmt.int64(2) != 0)
    }
    return result
}

/// A checkpoint row edited beside its state blob, as a careless hand or a damaged page would.
private func editRow(_ statePath: String, partition: Int, seq: Int64, style: Int) throws {
    let edits = ["finished = 1", "position = position + 7", "offset = offset + 7", "watermark = watermark + 1000",
                 "epoch = epoch + 1"]
    let db = try SQLiteDatabase(path: statePath)
    try db.prepare("UPDATE sluice_checkpoints SET \(edits[style % edits.count]) WHERE partition = ? AND seq = ?")
        .bind(1, Int64(partition)).bind(2, seq).run()
}

/// A checkpoint state made unreadable: one bit flipped in the middle, replaced by garbage, or cut in half.
private func damaged(_ state: [UInt8], style: Int) -> [UInt8] {
    switch style % 3 {
    case 0:
        var bytes = state
        if bytes.isEmpty { return [0xFF] }
        bytes[bytes.count / 2] ^= 0x10
        return bytes
    case 1:
        return Array("not a snapshot at all".utf8)
    default:
        return Array(state.prefix(state.count / 2))
    }
}
