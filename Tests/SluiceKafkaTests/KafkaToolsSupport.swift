// The `sluice` binary as a child process, for the tests of `sluice dev kafka` and `sluice kafka
// check` (found as the end-to-end tests find it: $SLUICE_BIN, else .build/debug/sluice).

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

enum SluiceBinary {
    static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    static func path() throws -> String {
        let path = ProcessInfo.processInfo.environment["SLUICE_BIN"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (packageRoot as NSString).appendingPathComponent(".build/debug/sluice")
        try #require(FileManager.default.isExecutableFile(atPath: path),
                     "the sluice binary is missing at \(path): run `swift build` first (or set SLUICE_BIN to the binary)")
        return path
    }
}

/// A fresh directory for one test's files (a Unix socket path must stay short: under /tmp).
struct KafkaScratch {
    let path: String

    init(_ label: String) throws {
        path = "/tmp/sluice-kt-\(label)-\(getpid())-\(UUID().uuidString.prefix(6))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func at(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }
    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// A running `sluice`, its output in files (a chatty child never blocks on a pipe).
final class SluiceChild: @unchecked Sendable {
    let process = Process()
    let stdoutPath: String
    let stderrPath: String

    init(_ arguments: [String], scratch: KafkaScratch, label: String) throws {
        stdoutPath = scratch.at("\(label).out")
        stderrPath = scratch.at("\(label).err")
        _ = FileManager.default.createFile(atPath: stdoutPath, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: try SluiceBinary.path())
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: stdoutPath))
        let err = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        defer {
            try? out.close()
            try? err.close()
        }
        process.standardOutput = out
        process.standardError = err
        try process.run()
    }

    var stdout: String { Self.read(stdoutPath) }
    var stderr: String { Self.read(stderrPath) }

    func signal(_ sig: Int32) { _ = kill(process.processIdentifier, sig) }

    /// Waits for the exit (SIGKILL after `timeout`): the status, or nil when it had to be killed.
    func wait(timeout: Duration = .seconds(60)) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now >= deadline {
                signal(SIGKILL)
                process.waitUntilExit()
                return nil
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        process.waitUntilExit()
        return process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
    }

    /// Polls stdout until it holds a line starting with `prefix`; returns the rest of that line.
    func line(startingWith prefix: String, timeout: Duration = .seconds(60)) async -> String? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            for line in stdout.split(separator: "\n") where line.hasPrefix(prefix) { return String(line.dropFirst(prefix.count)) }
            if !process.isRunning { return nil }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return nil
    }

    static func read(_ path: String) -> String {
        FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }
}

/// Runs `sluice <arguments>` to its end: (status, stdout, stderr); a hang fails the test.
func runSluice(_ arguments: [String], scratch: KafkaScratch, label: String,
               timeout: Duration = .seconds(90)) async throws -> (status: Int32, stdout: String, stderr: String) {
    let child = try SluiceChild(arguments, scratch: scratch, label: label)
    let status = await child.wait(timeout: timeout)
    #expect(status != nil, "sluice \(arguments.joined(separator: " ")) hung")
    return (status ?? -1, child.stdout, child.stderr)
}
