// A records job through real processes: the orders workload (JSON, string keys, decimals,
// re-delivered orders, bad lines) run by `sluice run`, SIGKILLed twice and resumed; the sink must
// equal the oracle, dedupe and count_distinct state having crossed the checkpoints.

import Foundation
import SluiceStorage
import Testing

extension SluiceEndToEndTests {
    @Test("SIGKILL and resume the JSON orders job with dedupe and count_distinct (240,000 events)")
    func killAndResumeOrdersJob() async throws {
        let scratch = try ScratchDir("kill-orders")
        defer { scratch.remove() }
        let input = scratch.at("orders")
        let gen = try await sluice(["gen", "--seed", "31", "--events", "240000", "--partitions", "4", "--keys", "300",
                                    "--workload", "orders", "--out", input], scratch: scratch, label: "gen")
        try #require(gen.exitedWith0, "gen: \(gen)")
        let jobPath = E2E.job("orders-revenue")
        let output = "sqlite:" + scratch.at("out.db")
        // 60,000 orders per partition at 8,000 events/s: at least 7.5 s, so both kills land mid-run.
        let run = ["run", "--job", jobPath, "--input", "file:\(input)", "--output", output, "--parallelism", "2",
                   "--checkpoint-interval-ms", "100", "--rate", "8000", "--quiet"]
        let report = try await killRepeatedly(run, scratch: scratch, label: "run", seed: 12, delaysMs: 700...2_000,
                                              targetKills: 2, maxAttempts: 6)
        print("[kill-and-resume, orders] \(report)")
        #expect(report.killedAfterMs.count == 2, "expected 2 kills of a running process: \(report)")

        let final = try await sluice(run, scratch: scratch, label: "run-final")
        try #require(final.exitedWith0, "the run after the kills did not complete: \(final)")
        let verify = try await sluice(["verify", "--job", jobPath, "--input", "file:\(input)", "--output", output],
                                      scratch: scratch, label: "verify")
        #expect(verify.exitedWith0, "sluice verify (orders) after \(report): \(verify)")
        print("[kill-and-resume, orders] verify: \(verify.stdout.trimmingCharacters(in: .whitespacesAndNewlines))")

        // Without the oracle: no (window, customer) twice, no duplicate recorded twice, and some of each.
        let counts = try sqliteSinkCounts(path: scratch.at("out.db"), table: "orders_revenue", key: "customer")
        #expect(counts.hasNoDuplicates, "duplicates in the sink: \(counts)")
        #expect(counts.rows > 250 && counts.dead > 100, "suspiciously few rows or dead letters: \(counts)")  // 24 s of event time: one or two windows of 300 customers
        let db = try SQLiteDatabase(path: scratch.at("out.db"))
        let dupes = try db.prepare("SELECT COUNT(*), COUNT(DISTINCT partition || ',' || offset) FROM orders_revenue_duplicates")
        _ = try dupes.step()
        #expect(dupes.int64(0) > 100 && dupes.int64(0) == dupes.int64(1), "re-delivered orders recorded: \(dupes.int64(0)), distinct \(dupes.int64(1))")
        let log = try await expectContiguousCommitLog(statePath: scratch.at("out.db"), lineCounts: try inputLineCounts(directory: input))
        #expect(killedAttemptsThatCommitted(log) == 2, "kills before any commit of their attempt: \(report)")
    }
}
