// Helpers for the end-to-end tests: find the `sluice` binary, spawn it as a real process with its
// output in files, wait with a timeout (a hung child is SIGKILLed), kill it, and scratch directories.

import Foundation
import SluiceWorkload
import SluiceStorage
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Every end-to-end test is in this one suite (its tests are spread over extensions in several
/// files), so that they run one at a time: they spawn CPU-heavy processes and time their kills.
@Suite(.serialized) struct SluiceEndToEndTests {}

enum E2E {
    /// The package root: three levels up from this file (`Tests/SluiceEndToEndTests/Support.swift`).
    static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// `$SLUICE_BIN`, else `<package root>/.build/debug/sluice`. Fails the test when it is missing.
    static func binary() throws -> String {
        let path = ProcessInfo.processInfo.environment["SLUICE_BIN"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (packageRoot as NSString).appendingPathComponent(".build/debug/sluice")
        try #require(FileManager.default.isExecutableFile(atPath: path),
                     "the sluice binary is missing at \(path): run `swift build` first (or set SLUICE_BIN to the binary)")
        return path
    }

    /// A job spec shipped with the package, e.g. `job("bids-sliding")`.
    static func job(_ name: String) -> String {
        (packageRoot as NSString).appendingPathComponent("jobs/\(name).yaml")
    }

    /// Every child of one test waits at most this long before it is killed as hung.
    static let defaultTimeout: Duration = .seconds(120)
}

/// A fresh directory under the system temporary directory; `remove()` deletes it.
struct ScratchDir {
    let path: String

    init(_ label: String) throws {
        path = (FileManager.default.temporaryDirectory.path as NSString)
            .appendingPathComponent("sluice-e2e-\(label)-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func at(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// How a child ended.
struct ChildExit: CustomStringConvertible {
    /// The exit status, or the signal number when `signaled`.
    var status: Int32
    var signaled: Bool
    /// The harness killed it because it ran past its timeout.
    var timedOut: Bool
    var stdout: String
    var stderr: String

    var exitedWith0: Bool { !signaled && status == 0 }

    var description: String {
        let how = timedOut ? "TIMED OUT and was killed" : signaled ? "killed by signal \(status)" : "exited with \(status)"
        return "\(how)\n--- stdout ---\n\(stdout.suffix(4_000))\n--- stderr ---\n\(stderr.suffix(4_000))"
    }
}

/// A running `sluice` process; stdout and stderr go to files, so a chatty child never blocks on a pipe.
final class Child {
    let process = Process()
    let label: String
    let stdoutPath: String
    let stderrPath: String
    private var exit: ChildExit?

    private static let counter = Counter()

    /// Starts `sluice <arguments>`; its logs go to `logs/` under `scratch`. A `launcher` (for
    /// example `["/usr/bin/prlimit", "--nofile=256:256", "--"]`) runs the binary through it.
    init(_ arguments: [String], scratch: ScratchDir, label: String, launcher: [String] = [],
         environment: [String: String] = [:]) throws {
        let binary = try E2E.binary()
        self.label = label
        let logs = scratch.at("logs")
        try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
        let n = Child.counter.next()
        stdoutPath = (logs as NSString).appendingPathComponent("\(n)-\(label).out")
        stderrPath = (logs as NSString).appendingPathComponent("\(n)-\(label).err")
        _ = FileManager.default.createFile(atPath: stdoutPath, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: launcher.first ?? binary)
        process.arguments = launcher.isEmpty ? arguments : Array(launcher.dropFirst()) + [binary] + arguments
        process.currentDirectoryURL = URL(fileURLWithPath: scratch.path)
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        process.standardInput = FileHandle.nullDevice
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: stdoutPath))
        let err = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        defer {  // the child has its own copies
            try? out.close()
            try? err.close()
        }
        process.standardOutput = out
        process.standardError = err
        try process.run()
    }

    var pid: pid_t { process.processIdentifier }
    var isRunning: Bool { process.isRunning }

    /// Sends SIGKILL (the caller checks, from `wait()`, whether it was still running).
    func kill() { sendSIGKILL(pid) }

    /// Waits for the exit; after `timeout` the child is SIGKILLed and the exit says `timedOut`.
    func wait(timeout: Duration = E2E.defaultTimeout) async -> ChildExit {
        if let exit { return exit }
        let deadline = ContinuousClock.now + timeout
        var timedOut = false
        while process.isRunning {
            if ContinuousClock.now >= deadline {
                timedOut = true
                kill()
                break
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        process.waitUntilExit()  // returns at once, or right after the SIGKILL above
        let result = ChildExit(
            status: process.terminationStatus, signaled: process.terminationReason == .uncaughtSignal,
            timedOut: timedOut, stdout: Child.read(stdoutPath), stderr: Child.read(stderrPath))
        exit = result
        return result
    }

    static func read(_ path: String) -> String {
        guard let data = FileManager.default.contents(atPath: path) else { return "" }
        return String(decoding: data, as: UTF8.self)
    }

    final class Counter: @unchecked Sendable {
        private var value = 0
        private let lock = NSLock()
        func next() -> Int { lock.withLock { value += 1; return value } }
    }
}

private func sendSIGKILL(_ pid: pid_t) {
    _ = kill(pid, SIGKILL)
}

/// Runs `sluice <arguments>` to its end (bounded by `timeout`); records an issue if it hung.
@discardableResult
func sluice(_ arguments: [String], scratch: ScratchDir, label: String,
            timeout: Duration = E2E.defaultTimeout, environment: [String: String] = [:]) async throws -> ChildExit {
    let child = try Child(arguments, scratch: scratch, label: label, environment: environment)
    let exit = await child.wait(timeout: timeout)
    #expect(!exit.timedOut, "sluice \(arguments.joined(separator: " ")) hung: \(exit)")
    return exit
}

/// Seeded kill delays (the workload's SplitMix64, so a seed means the same on every machine).
struct DelayRNG {
    private var rng: SplitMix64
    init(seed: UInt64) { rng = SplitMix64(seed: seed) }

    mutating func next() -> UInt64 { rng.next() }

    /// A delay in `range` (milliseconds), uniform to the millisecond.
    mutating func delayMs(_ range: ClosedRange<Int>) -> Int {
        range.lowerBound + Int(next() % UInt64(range.count))
    }
}

/// What a kill loop did.
struct KillReport: CustomStringConvertible {
    /// Delays (ms) of the attempts that were SIGKILLed while still running.
    var killedAfterMs: [Int] = []
    /// Delays of attempts that had already exited (status 0) when their delay was up.
    var finishedBeforeMs: [Int] = []
    var attempts = 0

    var description: String {
        "\(killedAfterMs.count) kills of a running process after \(killedAfterMs.map { "\($0) ms" }.joined(separator: ", "))"
            + (finishedBeforeMs.isEmpty ? "" : "; finished on its own before the delay of \(finishedBeforeMs.map { "\($0) ms" }.joined(separator: ", "))")
            + " (\(attempts) attempts)"
    }
}

/// Starts `sluice <arguments>` again and again and SIGKILLs it after a seeded random delay, until
/// `targetKills` kills of a process that was really still running, `maxAttempts` attempts, or an
/// attempt that ran to its end (which must exit 0). Returns what happened.
func killRepeatedly(_ arguments: [String], scratch: ScratchDir, label: String, seed: UInt64,
                    delaysMs: ClosedRange<Int>, targetKills: Int, maxAttempts: Int) async throws -> KillReport {
    var rng = DelayRNG(seed: seed)
    var report = KillReport()
    while report.attempts < maxAttempts && report.killedAfterMs.count < targetKills {
        report.attempts += 1
        let delay = rng.delayMs(delaysMs)
        let child = try Child(arguments, scratch: scratch, label: "\(label)-attempt\(report.attempts)")
        try await Task.sleep(for: .milliseconds(delay))
        if child.isRunning { child.kill() }
        let exit = await child.wait()
        if exit.signaled && exit.status == SIGKILL && !exit.timedOut {
            report.killedAfterMs.append(delay)
            continue
        }
        // It ended by itself before the kill: that must be a clean, complete run.
        try #require(exit.exitedWith0, "attempt \(report.attempts) of \(label) ended on its own but not with 0: \(exit)")
        report.finishedBeforeMs.append(delay)
        break
    }
    return report
}

// MARK: - Sink inspection

/// Rows, distinct (window, key) pairs, and late/dead-letter entries with their distinct counts.
struct SinkCounts: CustomStringConvertible {
    var rows = 0
    var distinctWindowKeys = 0
    var late = 0
    var distinctLate = 0
    var dead = 0
    var distinctDead = 0

    var hasNoDuplicates: Bool { rows == distinctWindowKeys && late == distinctLate && dead == distinctDead }

    var description: String {
        "\(rows) rows (\(distinctWindowKeys) distinct window,key), \(late) late (\(distinctLate) distinct), \(dead) dead letters (\(distinctDead) distinct)"
    }
}

/// Counts what a SQLite sink holds in `table`, `<table>_late`, `<table>_dead_letters`.
func sqliteSinkCounts(path: String, table: String, key: String = "auction") throws -> SinkCounts {
    let db = try SQLiteDatabase(path: path)
    func scalar(_ sql: String) throws -> Int {
        let stmt = try db.prepare(sql)
        defer { stmt.reset() }
        guard try stmt.step() else { return -1 }
        return Int(stmt.int64(0))
    }
    var c = SinkCounts()
    c.rows = try scalar("SELECT COUNT(*) FROM \"\(table)\"")
    c.distinctWindowKeys = try scalar("SELECT COUNT(*) FROM (SELECT DISTINCT window_start_ms, \"\(key)\" FROM \"\(table)\")")
    c.late = try scalar("SELECT COUNT(*) FROM \"\(table)_late\"")
    c.distinctLate = try scalar("SELECT COUNT(*) FROM (SELECT DISTINCT partition, offset FROM \"\(table)_late\")")
    c.dead = try scalar("SELECT COUNT(*) FROM \"\(table)_dead_letters\"")
    c.distinctDead = try scalar("SELECT COUNT(*) FROM (SELECT DISTINCT partition, offset FROM \"\(table)_dead_letters\")")
    return c
}

/// The published files of a file sink, by kind (`results`, `late`, `dead`): data lines without headers.
func fileSinkLines(directory: String) throws -> (results: [Substring], late: [Substring], dead: [Substring], staged: [String]) {
    let fm = FileManager.default
    var results: [Substring] = [], late: [Substring] = [], dead: [Substring] = [], staged: [String] = []
    for part in try fm.contentsOfDirectory(atPath: directory).sorted() where part.hasPrefix("part-") {
        let dir = (directory as NSString).appendingPathComponent(part)
        for name in try fm.contentsOfDirectory(atPath: dir).sorted() {
            let path = (dir as NSString).appendingPathComponent(name)
            if name == ".staging" {
                staged += try fm.contentsOfDirectory(atPath: path).map { "\(part)/.staging/\($0)" }
                continue
            }
            guard name.hasSuffix(".csv"), let data = fm.contents(atPath: path) else { continue }
            let lines = String(decoding: data, as: UTF8.self).split(separator: "\n").dropFirst()
            if name.hasPrefix("results-") { results += lines }
            else if name.hasPrefix("late-") { late += lines }
            else if name.hasPrefix("dead-") { dead += lines }
        }
    }
    return (results, late, dead, staged)
}

/// Counts what a file sink published, from its CSV files.
func fileSinkCounts(directory: String) throws -> SinkCounts {
    let (results, late, dead, _) = try fileSinkLines(directory: directory)
    func firstTwo(_ line: Substring) -> Substring {
        var commas = 0
        for i in line.indices where line[i] == "," {
            commas += 1
            if commas == 2 { return line[..<i] }
        }
        return line
    }
    var c = SinkCounts()
    c.rows = results.count
    c.distinctWindowKeys = Set(results.map(firstTwo)).count
    c.late = late.count
    c.distinctLate = Set(late.map(firstTwo)).count
    c.dead = dead.count
    c.distinctDead = Set(dead.map(firstTwo)).count
    return c
}

/// Lines in each partition file of an input directory (a last line without `\n` counts).
func inputLineCounts(directory: String) throws -> [Int64] {
    var counts: [Int64] = []
    for p in 0..<10_000 {
        let name = (directory as NSString).appendingPathComponent(String(format: "part-%05d", p))
        guard let data = FileManager.default.contents(atPath: name + ".csv") ?? FileManager.default.contents(atPath: name + ".json") else { break }
        var n: Int64 = 0
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            guard let base = raw.baseAddress else { return }
            var start = 0
            while start < raw.count, let hit = memchr(base + start, 10, raw.count - start) {
                n += 1
                start = base.distance(to: UnsafeRawPointer(hit)) + 1
            }
            if start < raw.count { n += 1 }
        }
        counts.append(n)
    }
    return counts
}

/// Checks the store's commit log: per partition, seqs 1, 2, 3… whose offset ranges follow each
/// other from 0 to the partition's line count, so no input was committed twice or skipped.
func expectContiguousCommitLog(statePath: String, lineCounts: [Int64],
                               sourceLocation: SourceLocation = #_sourceLocation) async throws -> [CheckpointStore.CommitRecord] {
    let store = try CheckpointStore(path: statePath)
    let log = try await store.commitLog()
    for (partition, lines) in lineCounts.enumerated() {
        let commits = log.filter { $0.partition == partition }
        var expectedFrom: Int64 = 0
        for (i, c) in commits.enumerated() {
            #expect(c.seq == Int64(i + 1), "partition \(partition): commit #\(i) has seq \(c.seq)", sourceLocation: sourceLocation)
            #expect(c.fromOffset == expectedFrom,
                    "partition \(partition) seq \(c.seq): from offset \(c.fromOffset), expected \(expectedFrom)", sourceLocation: sourceLocation)
            expectedFrom = c.toOffset
        }
        #expect(expectedFrom == lines, "partition \(partition): commits end at offset \(expectedFrom), the input has \(lines) lines",
                sourceLocation: sourceLocation)
    }
    return log
}

/// The killed attempts that had committed something before their kill: the distinct epochs in the
/// commit log below the final run's (every start of `sluice run` claims each partition with the next
/// epoch). A kill test whose attempts died before their first commit would test little.
func killedAttemptsThatCommitted(_ log: [CheckpointStore.CommitRecord]) -> Int {
    let epochs = Set(log.map(\.epoch))
    guard let final = epochs.max() else { return 0 }
    return epochs.subtracting([final]).count
}

// MARK: - Generated inputs, shared by the tests of one run

/// `sluice gen` outputs, generated once per (seed, events, partitions) and removed when the test
/// process exits (they are tens of MB and take a while to write in a debug build).
actor GeneratedInputs {
    static let shared = GeneratedInputs()
    private var directories: [String: String] = [:]
    private var registeredCleanup = false

    func directory(seed: UInt64, events: Int, partitions: Int) async throws -> String {
        let name = "gen-s\(seed)-e\(events)-p\(partitions)"
        if let dir = directories[name] { return dir }
        if !registeredCleanup {
            registeredCleanup = true
            atexit { try? FileManager.default.removeItem(atPath: generatedInputsRoot) }
        }
        let scratch = try ScratchDir.named(generatedInputsRoot)
        let out = (generatedInputsRoot as NSString).appendingPathComponent(name)
        let exit = try await sluice(["gen", "--seed", "\(seed)", "--events", "\(events)", "--partitions", "\(partitions)",
                                     "--out", out], scratch: scratch, label: "gen-\(name)")
        try #require(exit.exitedWith0, "sluice gen failed: \(exit)")
        directories[name] = out
        return out
    }
}

/// Where `GeneratedInputs` puts its directories (one per test process).
let generatedInputsRoot: String = (FileManager.default.temporaryDirectory.path as NSString)
    .appendingPathComponent("sluice-e2e-inputs-\(getpid())")

extension ScratchDir {
    /// An existing or new directory at an exact path.
    static func named(_ path: String) throws -> ScratchDir {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return ScratchDir(existing: path)
    }

    private init(existing path: String) { self.path = path }
}
