import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Child processes of a local cluster (the demo's and the chaos harness's), each under a name,
/// with its standard output and error copied into `logs/<name>.out` and `.log`; killed on the way out.
///
/// Output goes through pipes rather than straight into files so that a child whose file size is
/// limited (the disk-full fault) can still log: a pipe write is not subject to RLIMIT_FSIZE.
public final class ProcessSupervisor: Sendable {
    public let logs: String
    public let executable: String
    private struct Children {
        var pids: [String: Int32] = [:]
        var processes: [Int32: Process] = [:]
        var outputs: [Int32: String] = [:]
    }
    private let children = Mutex(Children())

    /// `executable` defaults to this process's own binary (the `sluice` CLI starting its children).
    public init(logs: String, executable: String? = nil) {
        self.logs = logs
        self.executable = executable ?? URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
    }

    /// Starts `executable arguments` as `name`; `logName` (default `name`) names its log files, so a
    /// restarted process can keep the logs of the one before; `environment` is added to this
    /// process's own. With `ignoreFileSizeSignal`, the child
    /// starts with SIGXFSZ ignored (through `sh`, whose `trap ''` survives `exec`), so that a write
    /// past a file-size limit fails with EFBIG instead of killing it.
    @discardableResult
    public func start(_ name: String, _ arguments: [String], logName: String? = nil,
                      ignoreFileSizeSignal: Bool = false, environment: [String: String] = [:]) throws -> Int32 {
        let process = Process()
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        if ignoreFileSizeSignal {
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", "trap '' XFSZ; exec \"$0\" \"$@\"", executable] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
        }
        let base = (logs as NSString).appendingPathComponent(logName ?? name)
        let out = base + ".out"
        process.standardOutput = try Self.pump(into: out)
        process.standardError = try Self.pump(into: base + ".log")
        try process.run()
        let pid = process.processIdentifier
        children.withLock {
            $0.pids[name] = pid
            $0.processes[pid] = process
            $0.outputs[pid] = out
        }
        return pid
    }

    /// A pipe whose reading end appends everything to `path` (created empty).
    private static func pump(into path: String) throws -> Pipe {
        guard FileManager.default.createFile(atPath: path, contents: nil), let file = FileHandle(forWritingAtPath: path) else {
            throw SupervisorError("cannot create log file \(path)")
        }
        let pipe = Pipe()
        pipe.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            if data.isEmpty {
                handle.readabilityHandler = nil
                try? file.close()
            } else {
                try? file.write(contentsOf: data)
            }
        }
        return pipe
    }

    public func pid(_ name: String) -> Int32? { children.withLock { $0.pids[name] } }

    public var names: [String] { children.withLock { Array($0.pids.keys).sorted() } }

    /// True while the named process runs (a zombie, or one that exited, is not running).
    public func isRunning(_ name: String) -> Bool {
        guard let pid = pid(name), let process = children.withLock({ $0.processes[pid] }) else { return false }
        return process.isRunning
    }

    /// The port the coordinator printed on its standard output ("coordinator listening on HOST:PORT").
    public func waitForPort(_ pid: Int32, timeout: Duration = .seconds(30)) async throws -> Int {
        let path = children.withLock { $0.outputs[pid] }
        let rounds = Int(timeout.components.seconds * 10)
        for _ in 0..<max(1, rounds) {
            if let path, let text = try? String(contentsOfFile: path, encoding: .utf8),
               let line = text.split(separator: "\n").first(where: { $0.hasPrefix("coordinator listening on") }),
               let port = Int(line.split(separator: ":").last ?? "") {
                return port
            }
            // One that exited will not print it (a coordinator whose store is down gives up after a few seconds).
            if let process = children.withLock({ $0.processes[pid] }), !process.isRunning {
                throw SupervisorError("the coordinator exited (status \(process.terminationStatus)) before listening; see \(logs)")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw SupervisorError("the coordinator did not start; see \(logs)")
    }

    /// Sends `sig` to the named process; SIGKILL and SIGTERM also forget it.
    @discardableResult
    public func signal(_ name: String, _ sig: Int32) -> Bool {
        let pid: Int32? = children.withLock {
            (sig == SIGKILL || sig == SIGTERM) ? $0.pids.removeValue(forKey: name) : $0.pids[name]
        }
        guard let pid else { return false }
        return Glibc.kill(pid, sig) == 0
    }

    public func kill(_ name: String) { signal(name, SIGKILL) }

    /// SIGTERM (graceful), then SIGKILL whatever is left after a few seconds.
    public func terminateAll() {
        let all = children.withLock { $0.pids }
        for (_, pid) in all { Glibc.kill(pid, SIGCONT); Glibc.kill(pid, SIGTERM) }
        let running = children.withLock { state in all.values.compactMap { state.processes[$0] } }
        for _ in 0..<50 where running.contains(where: \.isRunning) { usleep(100_000) }
        killAll()
    }

    public func killAll() {
        let all = children.withLock {
            let all = $0.pids
            $0.pids = [:]
            return all
        }
        for (_, pid) in all { Glibc.kill(pid, SIGKILL) }
    }
}

public struct SupervisorError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
