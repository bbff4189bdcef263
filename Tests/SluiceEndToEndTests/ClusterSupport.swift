// Helpers for the cluster end-to-end tests: development certificates, a coordinator (its port
// parsed from stdout), workers, `sluice status` parsed into rows, waiting with a deadline, the
// coordinator's and the workers' log lines, a worker's /metrics, and cleanup that SIGKILLs every
// process still alive.

import Foundation
import SluiceStorage
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - `sluice status`, parsed

/// One row of the partition table of `sluice status`.
struct PartitionRow: Equatable, CustomStringConvertible {
    var partition: Int
    var owner: String?
    var epoch: Int64
    var committed: Int64
    /// `-` (none yet), `end`, or event time in ms, as printed.
    var watermark: String
    /// Lines not yet committed, including what the source has left, as the owner last reported.
    var lag: Int64
    /// granted, revoking, unassigned, finished.
    var state: String

    var description: String { "p\(partition) \(owner ?? "-") e\(epoch) c\(committed) w\(watermark) \(state)" }
}

/// One row of the worker table of `sluice status`.
struct WorkerRow: Equatable {
    var id: String
    var partitions: [Int]
    var eventsPerSecond: Int64
    var lastHeartbeatMsAgo: Int64
}

struct ClusterStatus: CustomStringConvertible {
    var partitions: [PartitionRow]
    var workers: [WorkerRow]
    /// The text `sluice status` printed.
    var text: String

    /// partition → owner, for the partitions that have one.
    var owners: [Int: String] {
        Dictionary(uniqueKeysWithValues: partitions.compactMap { p in p.owner.map { (p.partition, $0) } })
    }

    var epochs: [Int: Int64] { Dictionary(uniqueKeysWithValues: partitions.map { ($0.partition, $0.epoch) }) }

    /// How many partitions each owner holds (from the partition table).
    var heldCounts: [String: Int] { owners.values.reduce(into: [:]) { $0[$1, default: 0] += 1 } }

    var allFinished: Bool { !partitions.isEmpty && partitions.allSatisfy { $0.state == "finished" } }

    /// Every partition has an owner and none is being revoked or waiting for an owner.
    var settled: Bool { !partitions.isEmpty && partitions.allSatisfy { $0.owner != nil && ($0.state == "granted" || $0.state == "finished") } }

    func row(_ partition: Int) -> PartitionRow? { partitions.first { $0.partition == partition } }

    func partitions(of worker: String) -> [Int] { partitions.filter { $0.owner == worker }.map(\.partition) }

    var description: String { text }

    struct ParseError: Error, CustomStringConvertible {
        var description: String
    }

    /// Parses the two tables `sluice status` prints (see `render` in Sources/sluice/StatusCommand.swift).
    static func parse(_ text: String) throws -> ClusterStatus {
        var partitions: [PartitionRow] = []
        var workers: [WorkerRow] = []
        enum Section { case none, partitions, workers }
        var section = Section.none
        func number(_ s: Substring) -> Int64? { Int64(s.replacingOccurrences(of: ",", with: "")) }
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if fields.first == "partition" && fields.contains("owner") { section = .partitions; continue }
            if fields.first == "worker" && fields.contains("partitions") { section = .workers; continue }
            if fields.isEmpty { continue }
            switch section {
            case .none:
                continue
            case .partitions:
                guard fields.count == 7, let p = Int(fields[0]), let epoch = number(fields[2]), let committed = number(fields[3]),
                      let lag = number(fields[5]) else {
                    throw ParseError(description: "unreadable partition row '\(line)' in:\n\(text)")
                }
                partitions.append(PartitionRow(partition: p, owner: fields[1] == "-" ? nil : String(fields[1]), epoch: epoch,
                                               committed: committed, watermark: String(fields[4]), lag: lag, state: String(fields[6])))
            case .workers:
                // id [partitions] events/s N ms ago — the partitions column is blank for a worker holding none.
                guard fields.count == 5 || fields.count == 6, fields.last == "ago",
                      let rate = number(fields[fields.count - 4]), let ago = number(fields[fields.count - 3]) else {
                    throw ParseError(description: "unreadable worker row '\(line)' in:\n\(text)")
                }
                let held = fields.count == 6 ? try fields[1].split(separator: ",").map { s -> Int in
                    guard let p = Int(s) else { throw ParseError(description: "unreadable partitions in '\(line)'") }
                    return p
                } : []
                workers.append(WorkerRow(id: String(fields[0]), partitions: held, eventsPerSecond: rate, lastHeartbeatMsAgo: ago))
            }
        }
        guard !partitions.isEmpty else { throw ParseError(description: "no partition table in:\n\(text)") }
        return ClusterStatus(partitions: partitions, workers: workers, text: text)
    }
}

// MARK: - Log lines

/// `coordinator: grant partition P to W (epoch E)`.
struct GrantLine: Hashable, CustomStringConvertible {
    var partition: Int
    var worker: String
    var epoch: Int64
    var description: String { "partition \(partition) → \(worker) (epoch \(epoch))" }
}

enum ClusterLog {
    /// The grants in a coordinator's stderr, in order.
    static func grants(_ text: String) -> [GrantLine] {
        text.split(separator: "\n").compactMap { line in
            // TIME info coordinator: grant partition 3 to worker-2 (epoch 2) key=value…
            guard let start = line.range(of: "coordinator: grant partition ")?.lowerBound else { return nil }
            let f = Array(line[start...].split(separator: " ").prefix(8))
            guard f.count == 8, f[0] == "coordinator:", f[1] == "grant", f[2] == "partition", f[4] == "to", f[6] == "(epoch",
                  let p = Int(f[3]), let e = Int64(f[7].dropLast()) else { return nil }
            return GrantLine(partition: p, worker: String(f[5]), epoch: e)
        }
    }

    /// `partition P: granted with epoch E` in a worker's log lines (text format: after the time,
    /// level and component, before the metadata): (partition, epoch).
    static func workerGrants(_ text: String) -> [(partition: Int, epoch: Int64)] {
        text.split(separator: "\n").compactMap { line in
            let f = line.split(separator: " ")
            guard let i = f.indices.first(where: { f.count > $0 + 5 && f[$0] == "partition" && f[$0 + 2] == "granted" }),
                  f[i + 1].hasSuffix(":"), f[i + 3] == "with", f[i + 4] == "epoch",
                  let p = Int(f[i + 1].dropLast()), let e = Int64(f[i + 5]) else { return nil }
            return (p, e)
        }
    }

    /// Lines of `text` that contain `needle`.
    static func lines(_ text: String, containing needle: String) -> [Substring] {
        text.split(separator: "\n").filter { $0.contains(needle) }
    }
}

// MARK: - The cluster under test

/// A coordinator and its workers in one scratch directory, all real `sluice` processes. Every
/// process it starts is SIGKILLed by `tearDown()` if still alive (call it from a `defer`).
final class Cluster {
    /// Names the scratch directory and the tests' printed lines.
    let label: String
    let scratch: ScratchDir
    let certs: String
    let input: String
    /// The embedded default: the shared SQLite sink (and the workers' checkpoint store), and the
    /// coordinator's own SQLite state. Unused with `database`.
    let outputDB: String
    let coordinatorState: String
    /// With PostgreSQL: the sink, the workers' checkpoint store and the coordinator's store, all in
    /// this database (a postgres:// URL).
    let database: String?
    /// What the coordinator serves as the input (default `file:INPUT`).
    let inputURI: String
    let leaseTTLMs: Int
    let heartbeatMs: Int
    private(set) var coordinator: Child?
    private(set) var port = 0
    private(set) var workers: [String: Child] = [:]
    /// Every coordinator started, oldest first (a restart adds one).
    private(set) var coordinators: [Child] = []
    private var children: [Child] = []

    /// A scratch directory with development certificates for `workerCerts` workers (and `operator`).
    /// A job spec file for the coordinator (default: its built-in tumbling bid job).
    let job: String?

    init(label: String, input: String, database: String? = nil, inputURI: String? = nil, job: String? = nil,
         workerCerts: Int = 4, leaseTTLMs: Int = 3_000, heartbeatMs: Int = 500) async throws {
        self.label = label
        self.job = job
        scratch = try ScratchDir("cluster-\(label)")
        certs = scratch.at("certs")
        self.input = input
        outputDB = scratch.at("out.db")
        coordinatorState = scratch.at("coordinator.db")
        self.database = database
        self.inputURI = inputURI ?? "file:\(input)"
        self.leaseTTLMs = leaseTTLMs
        self.heartbeatMs = heartbeatMs
        let exit = try await sluice(["certs", "init", "--dir", certs, "--workers", "\(workerCerts)"], scratch: scratch, label: "certs")
        guard exit.exitedWith0 else {
            scratch.remove()
            throw ClusterError("sluice certs init failed: \(exit)")
        }
    }

    /// Ports of standby coordinators (followers sharing the state), which workers and status also try.
    private(set) var standbyPorts: [Int] = []

    /// What workers and `sluice status` dial: the coordinator, then any standby.
    var address: String { ([port] + standbyPorts).map { "127.0.0.1:\($0)" }.joined(separator: ",") }

    /// The sink every worker writes (and, by default, keeps its checkpoints in).
    var output: String { sink ?? database ?? "sqlite:\(outputDB)" }
    /// Another sink than the default (a kafka:// topic); workers then need `workerArguments`.
    var sink: String?
    /// More flags for every worker (e.g. `--state PATH`), and its environment.
    var workerArguments: [String] = []
    var workerEnvironment: [String: String] = [:]

    var coordinatorArguments: [String] {
        ["coordinator", "--certs", certs, "--input", inputURI, "--output", output]
            + ((coordinatorStore ?? database).map { ["--store", $0] } ?? ["--state", coordinatorState])
            + ["--lease-ttl-ms", "\(leaseTTLMs)", "--heartbeat-ms", "\(heartbeatMs)", "--leader-ttl-ms", "\(leaderTTLMs)"]
            + (job.map { ["--job", $0] } ?? []) + coordinatorExtraArguments
    }

    /// More flags for every coordinator this cluster starts (e.g. `--log-format json`).
    var coordinatorExtraArguments: [String] = []

    /// The coordinators' leadership lease: short, so that the failover test is quick.
    var leaderTTLMs = 2_000
    /// The coordinator's `--store`, when it is not `database` (e.g. the same database through a
    /// fault proxy).
    var coordinatorStore: String?

    /// Starts a coordinator on `127.0.0.1:port` (0: any free port) and waits for its
    /// `coordinator listening on HOST:PORT` line; `port` is then the bound one. A restart reuses
    /// the id, so it leads again at once. A `standby` coordinator (another id) is only added to
    /// the addresses the others dial.
    @discardableResult
    func startCoordinator(port requested: Int = 0, id: String = "coordinator-main", standby: Bool = false,
                          timeout: Duration = .seconds(30)) async throws -> Child {
        let child = try Child(coordinatorArguments + ["--listen", "127.0.0.1:\(requested)", "--id", id], scratch: scratch,
                              label: "coordinator\(coordinators.count + 1)")
        children.append(child)
        coordinators.append(child)
        if !standby { coordinator = child }
        let deadline = ContinuousClock.now + timeout
        while true {
            let out = Child.read(child.stdoutPath)
            if let line = out.split(separator: "\n").first(where: { $0.hasPrefix("coordinator listening on ") }),
               let bound = line.split(separator: ":").last.flatMap({ Int($0) }) {
                if requested != 0 {
                    #expect(bound == requested, "the coordinator bound \(bound), asked for \(requested)")
                }
                if standby { standbyPorts.append(bound) } else { port = bound }
                return child
            }
            if !child.isRunning {
                let exit = await child.wait()
                throw ClusterError("the coordinator exited before listening: \(exit)")
            }
            if ContinuousClock.now >= deadline {
                throw ClusterError("the coordinator did not print its port within \(timeout):\n\(diagnostics())")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Starts `sluice worker --id ID` against the current coordinator. `tls` replaces `--certs DIR`.
    @discardableResult
    func startWorker(_ id: String, rate: Int?, metrics: Bool = false, tls: [String]? = nil, label: String? = nil) throws -> Child {
        var args = ["worker", "--id", id, "--coordinator", address] + (tls ?? ["--certs", certs])
        if let rate { args += ["--rate", "\(rate)"] }
        if metrics { args += ["--metrics", "127.0.0.1:0"] }
        let child = try Child(args + workerArguments, scratch: scratch, label: label ?? id, environment: workerEnvironment)
        children.append(child)
        if label == nil { workers[id] = child }
        return child
    }

    /// After a failover: `child`, a standby, is now the coordinator (stopped by `stopGracefully`).
    func promoteStandby(_ child: Child) {
        coordinator = child
    }

    /// `sluice status` as `identity`, parsed; nil when it fails (e.g. the coordinator is down).
    func tryStatus(as identity: String = "operator") async throws -> ClusterStatus? {
        let child = try Child(["status", "--coordinator", address, "--certs", certs, "--as", identity],
                              scratch: scratch, label: "status")
        let exit = await child.wait(timeout: .seconds(20))
        try? FileManager.default.removeItem(atPath: child.stdoutPath)  // hundreds of polls: keep logs/ small
        try? FileManager.default.removeItem(atPath: child.stderrPath)
        guard exit.exitedWith0 else { return nil }
        return try ClusterStatus.parse(exit.stdout)
    }

    /// `sluice status`, which must succeed.
    func status(as identity: String = "operator") async throws -> ClusterStatus {
        guard let status = try await tryStatus(as: identity) else {
            let child = try Child(["status", "--coordinator", address, "--certs", certs, "--as", identity],
                                  scratch: scratch, label: "status-failed")
            let exit = await child.wait(timeout: .seconds(20))
            throw ClusterError("sluice status failed: \(exit)\n\(diagnostics())")
        }
        return status
    }

    /// Polls `sluice status` until `predicate` holds; throws after `timeout` with the last status and the logs.
    @discardableResult
    func waitForStatus(_ what: String, timeout: Duration,
                       _ predicate: (ClusterStatus) throws -> Bool) async throws -> ClusterStatus {
        let deadline = ContinuousClock.now + timeout
        var last: ClusterStatus?
        while ContinuousClock.now < deadline {
            if let status = try await tryStatus() {
                last = status
                if try predicate(status) { return status }
            }
            try await Task.sleep(for: .milliseconds(150))
        }
        throw ClusterError("timed out after \(timeout) waiting until \(what); last status:\n\(last?.text ?? "(none)")\n\(diagnostics())")
    }

    /// All partitions `finished`, bounded by `timeout`.
    @discardableResult
    func waitUntilAllFinished(timeout: Duration) async throws -> ClusterStatus {
        try await waitForStatus("every partition is finished", timeout: timeout) { $0.allFinished }
    }

    /// The stderr of every coordinator started so far, concatenated.
    var coordinatorLog: String { coordinators.map { Child.read($0.stderrPath) }.joined(separator: "\n") }

    func log(_ child: Child) -> String { Child.read(child.stderrPath) }

    /// SIGTERMs the workers (graceful: release and exit 0) and then the coordinator; returns how each ended.
    func stopGracefully(timeout: Duration = .seconds(30)) async -> [String: ChildExit] {
        var exits: [String: ChildExit] = [:]
        let alive = workers.filter { $0.value.isRunning }
        for (_, w) in alive { w.signal(SIGTERM) }
        for (id, w) in alive { exits[id] = await w.wait(timeout: timeout) }
        if let coordinator, coordinator.isRunning {
            coordinator.signal(SIGTERM)
            exits["coordinator"] = await coordinator.wait(timeout: timeout)
        }
        return exits
    }

    /// `sluice verify` of the shared SQLite sink against the oracle.
    func verify() async throws -> ChildExit {
        try await sluice(["verify", "--input", inputURI, "--output", output], scratch: scratch,
                         label: "verify", timeout: .seconds(300))
    }

    /// Every partition's epoch in the checkpoint store (the sink database), or nil when unreadable now.
    func storeEpochs() -> [Int: Int64]? {
        if let database {
            guard let conn = try? PostgresConnection(url: PostgresURL(database)),
                  let rows = try? conn.execute("SELECT partition, epoch FROM sluice_partitions") else { return nil }
            var result: [Int: Int64] = [:]
            for r in 0..<rows.count { if let p = try? rows.int64(r, 0), let e = try? rows.int64(r, 1) { result[Int(p)] = e } }
            return result
        }
        guard FileManager.default.fileExists(atPath: outputDB), let db = try? SQLiteDatabase(path: outputDB),
              let stmt = try? db.prepare("SELECT partition, epoch FROM sluice_partitions") else { return nil }
        var result: [Int: Int64] = [:]
        while (try? stmt.step()) == true { result[Int(stmt.int64(0))] = stmt.int64(1) }
        return result
    }

    /// The tails of the coordinators' and workers' logs, for failure messages.
    func diagnostics() -> String {
        var parts: [String] = []
        for c in children where !c.label.hasPrefix("status") {
            let err = Child.read(c.stderrPath)
            parts.append("--- \(c.label) (pid \(c.pid), \(c.isRunning ? "running" : "exited")) stderr, last lines ---\n"
                         + err.split(separator: "\n").suffix(25).joined(separator: "\n"))
        }
        return parts.joined(separator: "\n")
    }

    /// SIGKILLs (and SIGCONTs) every process still alive, reaps them, and removes the scratch directory
    /// (kept, with every log, when SLUICE_E2E_KEEP is set).
    func tearDown() {
        for c in children where c.isRunning {
            c.kill()
            sendSignal(c.pid, SIGCONT)  // a SIGSTOPped child dies of the SIGKILL too; this is belt and braces
        }
        for c in children { c.process.waitUntilExit() }
        if ProcessInfo.processInfo.environment["SLUICE_E2E_KEEP"].map({ !$0.isEmpty }) == true {
            print("[cluster] SLUICE_E2E_KEEP is set: kept \(scratch.path)")
        } else {
            scratch.remove()
        }
    }
}

private func sendSignal(_ pid: pid_t, _ sig: Int32) {
    _ = kill(pid, sig)
}

struct ClusterError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension Child {
    /// Sends `sig` (SIGTERM, SIGSTOP, SIGCONT, …) if the child is still running.
    func signal(_ sig: Int32) {
        if isRunning { sendSignal(pid, sig) }
    }

    /// The port of `--metrics 127.0.0.1:0`, from the `metrics on http://HOST:PORT/metrics` line.
    func metricsPort(timeout: Duration = .seconds(20)) async throws -> Int {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let err = Child.read(stderrPath)
            if let line = err.split(separator: "\n").first(where: { $0.contains("metrics on http://") }),
               let url = line.split(separator: " ").first(where: { $0.hasPrefix("http://") }),  // log metadata may follow
               let port = url.split(separator: ":").last?.split(separator: "/").first.flatMap({ Int($0) }) {
                return port
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ClusterError("\(label) printed no metrics address: \(Child.read(stderrPath).suffix(2_000))")
    }
}

// MARK: - Waiting, ports, HTTP

/// Polls `condition` every `every` until it holds (true) or `timeout` passes (false).
func eventually(timeout: Duration, every: Duration = .milliseconds(100),
                _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while true {
        if try await condition() { return true }
        if ContinuousClock.now >= deadline { return false }
        try? await Task.sleep(for: every)
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then closed).
func freeLocalPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw ClusterError("socket() failed: \(errno)") }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = 0
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
    guard bound == 0 else { throw ClusterError("bind() failed: \(errno)") }
    let named = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    guard named == 0 else { throw ClusterError("getsockname() failed: \(errno)") }
    return Int(UInt16(bigEndian: addr.sin_port))
}

/// Connects socket `fd` to 127.0.0.1:`port`; false (errno set) if it cannot.
func connectLoopback(_ fd: Int32, port: Int) -> Bool {
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    return withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    } == 0
}

/// A plain HTTP/1.1 GET of `http://127.0.0.1:port/path`: the status code and the body.
func httpGet(port: Int, path: String, timeoutSeconds: Int = 5) throws -> (status: Int, body: String) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw ClusterError("socket() failed: \(errno)") }
    defer { close(fd) }
    var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    guard connectLoopback(fd, port: port) else { throw ClusterError("cannot connect to 127.0.0.1:\(port): errno \(errno)") }
    let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n\r\n".utf8)
    var sent = 0
    while sent < request.count {
        let n = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { throw ClusterError("send() to 127.0.0.1:\(port) failed: errno \(errno)") }
        sent += n
    }
    var response: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 16_384)
    while true {
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n < 0 { throw ClusterError("recv() from 127.0.0.1:\(port) failed: errno \(errno)") }
        if n == 0 { break }
        response += buffer[0..<n]
    }
    let text = String(decoding: response, as: UTF8.self)
    guard let headerEnd = text.range(of: "\r\n\r\n"),
          let code = text.split(separator: " ", maxSplits: 2).dropFirst().first.flatMap({ Int($0) }) else {
        throw ClusterError("not an HTTP response from 127.0.0.1:\(port): \(text.prefix(200))")
    }
    var body = String(text[headerEnd.upperBound...])
    if text[..<headerEnd.lowerBound].lowercased().contains("transfer-encoding: chunked") { body = dechunk(body) }
    return (code, body)
}

/// Decodes an HTTP/1.1 chunked body.
private func dechunk(_ body: String) -> String {
    var out = ""
    var rest = Substring(body)
    while let lineEnd = rest.range(of: "\r\n"), let size = Int(rest[..<lineEnd.lowerBound].split(separator: ";").first ?? "", radix: 16) {
        if size == 0 { break }
        let start = lineEnd.upperBound
        let bytes = rest.utf8[start...].prefix(size)
        out += String(decoding: bytes, as: UTF8.self)
        rest = Substring(rest.utf8[bytes.endIndex...]).dropFirst(2)
    }
    return out
}

/// The value of a Prometheus sample `name` (without labels) in a /metrics text, or nil.
func metricValue(_ name: String, in text: String) -> Double? {
    for line in text.split(separator: "\n") where !line.hasPrefix("#") {
        let f = line.split(separator: " ")
        if f.count >= 2, f[0] == name { return Double(f[1]) }
    }
    return nil
}

extension Duration {
    /// Milliseconds, for reports.
    var ms: Int64 { components.seconds * 1_000 + components.attoseconds / 1_000_000_000_000_000 }
}
