// Helpers for the PostgreSQL end-to-end tests, copied from SluiceEndToEndTests/Support.swift (test
// targets cannot share files): find the `sluice` binary, spawn it as a real process with its output
// in files, wait with a timeout (a hung child is SIGKILLed), kill it, and scratch directories.

import Foundation
import SluiceWorkload
import SluiceStorage
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

enum E2E {
    /// The package root: three levels up from this file (`Tests/SluiceEndToEndTests/Support.swift`).
    static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }  // Tests/SluicePostgresTests/ProcessSupport.swift
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
            .appendingPathComponent("sluice-pg-\(label)-\(getpid())-\(UUID().uuidString.prefix(8))")
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

    /// Starts `sluice <arguments>`; its logs go to `logs/` under `scratch`.
    init(_ arguments: [String], scratch: ScratchDir, label: String) throws {
        let binary = try E2E.binary()
        self.label = label
        let logs = scratch.at("logs")
        try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
        let n = Child.counter.next()
        stdoutPath = (logs as NSString).appendingPathComponent("\(n)-\(label).out")
        stderrPath = (logs as NSString).appendingPathComponent("\(n)-\(label).err")
        _ = FileManager.default.createFile(atPath: stdoutPath, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: scratch.path)
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
            timeout: Duration = E2E.defaultTimeout) async throws -> ChildExit {
    let child = try Child(arguments, scratch: scratch, label: label)
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

/// Lines in each partition file of an input directory (a last line without `\n` counts).
func inputLineCounts(directory: String) throws -> [Int64] {
    var counts: [Int64] = []
    for p in 0..<10_000 {
        let path = (directory as NSString).appendingPathComponent(String(format: "part-%05d.csv", p))
        guard let data = FileManager.default.contents(atPath: path) else { break }
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
    .appendingPathComponent("sluice-pg-inputs-\(getpid())")

extension ScratchDir {
    /// An existing or new directory at an exact path.
    static func named(_ path: String) throws -> ScratchDir {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return ScratchDir(existing: path)
    }

    private init(existing path: String) { self.path = path }
}
