// PartitionHost in-process: real partitions on lanes, a SQLite sink and store in a temporary
// directory, the seeded generator as input. Every wait is bounded (polls of 50 ms, a deadline).

import Foundation
import Logging
import SluiceConnectors
import SluiceCore
import SluiceJob
import SluiceRuntime
import SluiceStorage
import Synchronization
import Testing

/// Collects a host's events as they come.
private final class EventLog: Sendable {
    private let sink = EventSink()
    private let task: Task<Void, Never>

    init(_ host: PartitionHost) {
        let sink = self.sink
        task = Task { for await event in host.events { sink.append(event) } }
    }

    var all: [PartitionHost.Event] { sink.all }

    /// Waits (at most `timeout`) for an event matching `match`.
    func wait(timeout: Duration = .seconds(30), _ match: @escaping (PartitionHost.Event) -> Bool) async -> PartitionHost.Event? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let hit = all.first(where: match) { return hit }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return all.first(where: match)
    }

    deinit { task.cancel() }
}

private final class EventSink: Sendable {
    private let events = Mutex<[PartitionHost.Event]>([])
    func append(_ event: PartitionHost.Event) { events.withLock { $0.append(event) } }
    var all: [PartitionHost.Event] { events.withLock { $0 } }
}

/// Polls `condition` every 50 ms for at most `timeout`.
private func eventually(timeout: Duration = .seconds(30), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return try await condition()
}

/// A sink whose `stage` fails: a partition that cannot write its output.
private struct FailingSink: Sink {
    let inner: any Sink
    var defaultStatePath: String { inner.defaultStatePath }
    func stage(_ output: PartitionOutput, partition: Int, epoch: Int64, seq: Int64) throws -> [String] {
        throw SinkError("disk full (a test's failing sink)")
    }
    func publish(files: [String], partition: Int, epoch: Int64) throws { try inner.publish(files: files, partition: partition, epoch: epoch) }
    func recover(partition: Int, last: Checkpoint?) throws { try inner.recover(partition: partition, last: last) }
    func admit(_ owner: SinkOwner, statePath: String) throws { try inner.admit(owner, statePath: statePath) }
    func createTables(in db: SQLiteDatabase) throws { try inner.createTables(in: db) }
    func write(_ output: PartitionOutput, partition: Int, seq: Int64, in db: SQLiteDatabase) throws {
        try inner.write(output, partition: partition, seq: seq, in: db)
    }
    func discard(partition: Int, after seq: Int64, in db: SQLiteDatabase) throws { try inner.discard(partition: partition, after: seq, in: db) }
}

/// A sink, store and host on a scratch SQLite database.
private struct Bench {
    let directory: String
    let database: String
    let job: JobSpec
    let input: String
    let sources: SourceFactory
    let sink: any Sink
    let store: any CheckpointStoring
    let runStats: RunStats
    let host: PartitionHost

    static func make(label: String, directory: String? = nil, events: Int, partitions: Int = 1, rate: Double? = nil,
                     intervalMs: Int64 = 100, wrap: (any Sink) -> any Sink = { $0 }) async throws -> Bench {
        let directory = directory ?? FileManager.default.temporaryDirectory.appendingPathComponent("sluice-host-\(label)-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let database = directory + "/out.db"
        var job = JobSpec.defaultBidsTumbling
        job.checkpointIntervalMs = intervalMs
        let input = "gen:seed=42,events=\(events),partitions=\(partitions),keys=500"
        let sources = try SourceFactory(uri: input, schema: job.pipeline.schema, jobName: job.name).throttled(to: rate)
        let (sink, store) = try await RunOutput.open(job: job, input: input, output: "sqlite:" + database, statePath: nil,
                                                     partitions: sources.partitions, logger: .silent)
        let stats = RunStats()
        let host = PartitionHost(job: job, sources: sources, store: store, sink: wrap(sink), stats: stats, rate: rate,
                                 lanes: Lanes(count: 1), logger: .silent)
        return Bench(directory: directory, database: database, job: job, input: input, sources: sources, sink: sink,
                     store: store, runStats: stats, host: host)
    }

    func offset(_ partition: Int) async -> Int64 {
        await host.progress().first { $0.partition == partition }?.offset ?? 0
    }

    /// (rows, sum of the count column) of the results table.
    func resultTotals() throws -> (rows: Int64, events: Int64) {
        let db = try SQLiteDatabase(path: database)
        let stmt = try db.prepare("SELECT COUNT(*), COALESCE(SUM(count), 0) FROM results")
        guard try stmt.step() else { return (0, 0) }
        return (stmt.int64(0), stmt.int64(1))
    }

    func remove() { try? FileManager.default.removeItem(atPath: directory) }
}

@Suite(.serialized) struct PartitionHostTests {
    @Test("Grant: the partition claims its epoch, runs to the end of its input and commits a finished checkpoint", .timeLimit(.minutes(2)))
    func grantRunsToTheEnd() async throws {
        let bench = try await Bench.make(label: "grant", events: 20_000, partitions: 2)
        defer { bench.remove() }
        let events = EventLog(bench.host)
        await bench.host.grant(partition: 0, epoch: 3)
        await bench.host.grant(partition: 1, epoch: 3)
        for p in 0..<2 {
            let finished = await events.wait { $0 == .finished(partition: p, epoch: 3) }
            #expect(finished != nil, "partition \(p) did not finish: \(events.all)")
            let newest = try #require(try await bench.store.checkpoints(partition: p).first)
            #expect(newest.finished && newest.epoch == 3 && newest.offset == 10_000, "\(newest)")
            #expect(try await bench.store.epoch(partition: p) == 3)
        }
        // Every line is an event or a dead letter (the generator writes a few malformed lines).
        #expect(bench.runStats.events.current + bench.runStats.deadLetters.current == 20_000,
                "\(bench.runStats.events.current) events, \(bench.runStats.deadLetters.current) dead letters")
        #expect(try bench.resultTotals().events > 0)
        await bench.host.releaseAll()
    }

    @Test("Revoke: a last checkpoint at the current offset, then released with that offset", .timeLimit(.minutes(2)))
    func revokeTakesALastCheckpoint() async throws {
        // No periodic checkpoint within the test (interval 10 min): the one found is the revocation's.
        let bench = try await Bench.make(label: "revoke", events: 1_000_000, rate: 5_000, intervalMs: 600_000)
        defer { bench.remove() }
        let events = EventLog(bench.host)
        await bench.host.grant(partition: 0, epoch: 1)
        #expect(await eventually { await bench.offset(0) > 0 }, "partition 0 never moved")
        #expect(try await bench.store.checkpoints(partition: 0).isEmpty)
        await bench.host.revoke(partition: 0, epoch: 1)
        let released = await events.wait { if case .released(0, 1, _) = $0 { true } else { false } }
        guard case .released(_, _, let committed)? = released else {
            Issue.record("no release: \(events.all)")
            return
        }
        let stored = try await bench.store.checkpoints(partition: 0)
        #expect(stored.count == 1 && stored[0].offset == committed && committed > 0 && !stored[0].finished && stored[0].epoch == 1,
                "released at \(committed); stored \(stored)")
        #expect(await bench.host.progress().isEmpty, "a released partition is no longer held")
        // A revocation of what is not running (another epoch) is answered at once.
        await bench.host.revoke(partition: 0, epoch: 7)
        #expect(await events.wait { $0 == .released(partition: 0, epoch: 7, committedOffset: 0) } != nil)
    }

    @Test("Fenced: a newer epoch claims the partition; the next commit is refused and the partition dropped", .timeLimit(.minutes(2)))
    func fencedDrop() async throws {
        let bench = try await Bench.make(label: "fenced", events: 1_000_000, rate: 5_000, intervalMs: 100)
        defer { bench.remove() }
        let events = EventLog(bench.host)
        await bench.host.grant(partition: 0, epoch: 1)
        #expect(await eventually { await bench.offset(0) > 0 })
        #expect(try await bench.store.claim(partition: 0, epoch: 2), "the newer epoch's claim")
        let fenced = await events.wait { $0 == .fenced(partition: 0, epoch: 1) }
        #expect(fenced != nil, "no fencing: \(events.all)")
        #expect(bench.runStats.fencedCommits.current == 1)
        #expect(await eventually(timeout: .seconds(10)) { await bench.host.progress().isEmpty })
        // The store never took a commit of epoch 1 after the claim of epoch 2.
        let newest = try await bench.store.checkpoints(partition: 0).first
        #expect(newest.map { $0.epoch == 1 } ?? true)
        let stale = try await bench.store.claim(partition: 0, epoch: 1)
        #expect(!stale, "epoch 1 may not claim again")
    }

    @Test("Failed: a partition that cannot write its output stops and is reported failed with the reason", .timeLimit(.minutes(2)))
    func failedDrop() async throws {
        let bench = try await Bench.make(label: "failed", events: 100_000, intervalMs: 50, wrap: { FailingSink(inner: $0) })
        defer { bench.remove() }
        let events = EventLog(bench.host)
        await bench.host.grant(partition: 0, epoch: 1)
        let failed = await events.wait { if case .failed(0, 1, _) = $0 { true } else { false } }
        guard case .failed(_, _, let reason)? = failed else {
            Issue.record("no failure: \(events.all)")
            return
        }
        #expect(reason.contains("disk full"), "\(reason)")
        #expect(bench.runStats.failures.current == 1)
        #expect(!events.all.contains { if case .fenced = $0 { true } else { false } }, "a failure is not a fencing")
        #expect(try await bench.store.checkpoints(partition: 0).isEmpty)
    }

    @Test("A corrupt newest checkpoint: the partition falls back to the one before and ends with the same result as a clean run",
          .timeLimit(.minutes(3)))
    func corruptCheckpointFallsBack() async throws {
        let events = 40_000
        // Two checkpoints, then a revocation (a third, the newest).
        let first = try await Bench.make(label: "corrupt", events: events, rate: 10_000, intervalMs: 200)
        defer { first.remove() }
        let log = EventLog(first.host)
        await first.host.grant(partition: 0, epoch: 1)
        #expect(try await eventually { try await first.store.checkpoints(partition: 0).count >= 2 }, "fewer than two checkpoints")
        await first.host.revoke(partition: 0, epoch: 1)
        #expect(await log.wait { if case .released(0, 1, _) = $0 { true } else { false } } != nil)
        let before = try await first.store.checkpoints(partition: 0)
        try #require(before.count == 2 && !before[0].finished)
        // Damage the newest checkpoint's state blob.
        let db = try SQLiteDatabase(path: first.database)
        try db.prepare("UPDATE sluice_checkpoints SET state = ? WHERE partition = 0 AND seq = ?")
            .bind(1, [UInt8](repeating: 0x5A, count: 64)).bind(2, before[0].seq).run()

        // The same store, a new host: restore falls back past the corrupt one and finishes.
        let second = try await Bench.make(label: "corrupt", directory: first.directory, events: events, intervalMs: 200)
        let log2 = EventLog(second.host)
        await second.host.grant(partition: 0, epoch: 2)
        #expect(await log2.wait { $0 == .finished(partition: 0, epoch: 2) } != nil, "\(log2.all)")
        #expect(second.runStats.corruptCheckpoints.current == 1)
        let after = try await second.store.checkpoints(partition: 0)
        #expect(after.first?.finished == true && after.first?.offset == Int64(events))

        let clean = try await Bench.make(label: "clean", events: events, intervalMs: 200)
        defer { clean.remove() }
        let log3 = EventLog(clean.host)
        await clean.host.grant(partition: 0, epoch: 1)
        #expect(await log3.wait { $0 == .finished(partition: 0, epoch: 1) } != nil)
        let (rows, counted) = try second.resultTotals()
        let (cleanRows, cleanCounted) = try clean.resultTotals()
        #expect(rows == cleanRows && counted == cleanCounted && rows > 0,
                "after the fallback: \(rows) rows counting \(counted) events; a clean run: \(cleanRows) rows, \(cleanCounted)")
        await second.host.releaseAll()
        await clean.host.releaseAll()
    }

    @Test("Pace: a partition held to 1,000 events/s takes about 3 s for 3,000 events", .timeLimit(.minutes(2)))
    func pace() async throws {
        let bench = try await Bench.make(label: "pace", events: 3_000, rate: 1_000, intervalMs: 100)
        defer { bench.remove() }
        let events = EventLog(bench.host)
        let started = ContinuousClock.now
        await bench.host.grant(partition: 0, epoch: 1)
        #expect(await events.wait(timeout: .seconds(60)) { $0 == .finished(partition: 0, epoch: 1) } != nil)
        let took = ContinuousClock.now - started
        // 3 s at the pace; wide margins for a loaded machine, and a hard floor the pace must hold.
        #expect(took >= .seconds(2), "3,000 events at 1,000/s finished in \(took)")
        #expect(took < .seconds(45), "took \(took)")
        await bench.host.releaseAll()
    }
}
