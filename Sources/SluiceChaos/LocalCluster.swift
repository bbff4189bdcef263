import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The cluster a suite runs against: a coordinator and workers as child processes on loopback,
/// each worker talking to the coordinator through a fault proxy of its own, and, with PostgreSQL,
/// to the database through a second one (the coordinator reaches the database directly).
public final class LocalCluster: Sendable {
    public struct Layout: Sendable {
        public var certs: String
        public var logs: String
        public var input: String
        public var output: String
        public var coordinatorState: String
        public var job: String?
        public var leaseTTLMs: Int64
        public var heartbeatMs: Int64
        /// Events per second per partition.
        public var rate: Double
        /// How long the fault proxies live at most (the run's bound, with a margin).
        public var proxyLifetime: TimeInterval
        /// PostgreSQL: the database holding the leases, checkpoints and sink, and the server's port.
        public var postgres: (url: String, port: Int)?
        /// PostgreSQL: `sluice worker --store-retry-ms`, or nil for the worker's default.
        public var storeRetryMs: Int64?
        /// SQLite store with a Kafka sink: the checkpoint store every worker shares (`--state`).
        public var workerState: String? = nil
        /// Added to each worker's environment (the Kafka sink's transaction-outcome log).
        public var workerEnvironment: [String: String] = [:]
    }

    public let layout: Layout
    public let supervisor: ProcessSupervisor
    private struct Members {
        var proxies: [String: FaultProxy] = [:]
        /// Worker id → its proxy to the database (PostgreSQL only).
        var storeProxies: [String: FaultProxy] = [:]
        var incarnations: [String: Int] = [:]
        var coordinatorPort: Int?
    }
    private let members = Mutex(Members())
    public var coordinatorPort: Int? { members.withLock { $0.coordinatorPort } }

    public init(layout: Layout, executable: String?) {
        self.layout = layout
        supervisor = ProcessSupervisor(logs: layout.logs, executable: executable)
    }

    /// `name`, `name.2`, `name.3`, … : one log per process, a restart keeps its predecessor's.
    private func logName(_ name: String) -> String {
        let n = members.withLock { m -> Int in
            m.incarnations[name, default: 0] += 1
            return m.incarnations[name] ?? 1
        }
        return n == 1 ? name : "\(name).\(n)"
    }

    /// Starts (or restarts) the coordinator and points every proxy at it. Returns its port.
    @discardableResult
    public func startCoordinator() async throws -> Int {
        var arguments = ["coordinator", "--listen", "127.0.0.1:0", "--certs", layout.certs, "--input", layout.input,
                         "--output", layout.output, "--lease-ttl-ms", String(layout.leaseTTLMs), "--heartbeat-ms", String(layout.heartbeatMs)]
        if let postgres = layout.postgres {
            arguments += ["--store", postgres.url]
        } else {
            arguments += ["--state", layout.coordinatorState]
        }
        if let job = layout.job { arguments += ["--job", job] }
        let pid = try supervisor.start("coordinator", arguments, logName: logName("coordinator"))
        let port = try await supervisor.waitForPort(pid)
        let all: [FaultProxy] = members.withLock {
            $0.coordinatorPort = port
            return Array($0.proxies.values)
        }
        for proxy in all { proxy.setTarget(port: port) }
        return port
    }

    public func killCoordinator() {
        members.withLock { $0.coordinatorPort = nil }
        supervisor.kill("coordinator")
    }

    /// Starts (or restarts) worker `id` behind its proxy (made on its first start).
    public func startWorker(_ id: String) throws {
        let lifetime = layout.proxyLifetime
        let proxy: FaultProxy = try members.withLock { m in
            if let existing = m.proxies[id] { return existing }
            guard let port = m.coordinatorPort else { throw SupervisorError("no coordinator to connect \(id) to") }
            let proxy = try FaultProxy(targetPort: port, lifetime: lifetime)
            m.proxies[id] = proxy
            return proxy
        }
        var arguments = ["worker", "--id", id, "--coordinator", "127.0.0.1:\(proxy.port)", "--certs", layout.certs,
                         "--rate", String(format: "%.1f", layout.rate)]
        if let postgres = layout.postgres {
            let storeProxy: FaultProxy = try members.withLock { m in
                if let existing = m.storeProxies[id] { return existing }
                let made = try FaultProxy(targetPort: postgres.port, lifetime: lifetime)
                m.storeProxies[id] = made
                return made
            }
            arguments += ["--state", ChaosPostgres.url(postgres.url, throughProxyPort: storeProxy.port)]
            if let retry = layout.storeRetryMs { arguments += ["--store-retry-ms", String(retry)] }
        } else if let state = layout.workerState {
            arguments += ["--state", state]
        }
        try supervisor.start(id, arguments, logName: logName(id), ignoreFileSizeSignal: true, environment: layout.workerEnvironment)
    }

    public func proxy(_ id: String) -> FaultProxy? { members.withLock { $0.proxies[id] } }

    /// The proxy between worker `id` and the database (PostgreSQL only).
    public func storeProxy(_ id: String) -> FaultProxy? { members.withLock { $0.storeProxies[id] } }

    public func pid(_ id: String) -> Int32? { supervisor.pid(id) }

    /// Stops everything: processes (graceful, then killed) and proxies.
    public func shutDown() {
        let all = members.withLock { Array($0.proxies.values) + Array($0.storeProxies.values) }
        for proxy in all { proxy.heal() }
        supervisor.terminateAll()
        for proxy in all { proxy.close() }
    }
}
