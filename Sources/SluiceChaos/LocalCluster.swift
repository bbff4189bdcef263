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
        /// Coordinators sharing the store: 1, or a leader and standbys that take the leadership
        /// over through the store (`coordinator-1`, `coordinator-2`, …; each worker dials them all).
        public var coordinators = 1
    }

    public let layout: Layout
    public let supervisor: ProcessSupervisor
    private struct Members {
        /// Worker id → its proxies to the coordinators, one per coordinator in `coordinatorNames` order.
        var proxies: [String: [FaultProxy]] = [:]
        /// Worker id → its proxy to the database (PostgreSQL only).
        var storeProxies: [String: FaultProxy] = [:]
        var incarnations: [String: Int] = [:]
        /// Coordinator name → its port while it runs.
        var coordinatorPorts: [String: Int] = [:]
    }
    private let members = Mutex(Members())

    /// `coordinator` alone (the names of older runs' logs), or `coordinator-1` … `coordinator-N`.
    public var coordinatorNames: [String] {
        layout.coordinators <= 1 ? ["coordinator"] : (1...layout.coordinators).map { "coordinator-\($0)" }
    }

    /// The coordinators that run, by name, with their ports.
    public var coordinatorPorts: [String: Int] { members.withLock { $0.coordinatorPorts } }

    /// The first coordinator's port (the only one's, without standbys).
    public var coordinatorPort: Int? {
        let ports = coordinatorPorts
        return coordinatorNames.compactMap { ports[$0] }.first
    }

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

    /// Starts (or restarts) the coordinator `name` (default: the first) and points every worker's
    /// proxy for it at it. Returns its port. A standby prints its port too, and serves once it leads.
    @discardableResult
    public func startCoordinator(_ name: String? = nil) async throws -> Int {
        let names = coordinatorNames
        let name = name ?? names[0]
        guard let slot = names.firstIndex(of: name) else { throw SupervisorError("no coordinator named \(name)") }
        var arguments = ["coordinator", "--listen", "127.0.0.1:0", "--certs", layout.certs, "--input", layout.input,
                         "--output", layout.output, "--lease-ttl-ms", String(layout.leaseTTLMs), "--heartbeat-ms", String(layout.heartbeatMs)]
        if let postgres = layout.postgres {
            arguments += ["--store", postgres.url]
        } else {
            arguments += ["--state", layout.coordinatorState]
        }
        if let job = layout.job { arguments += ["--job", job] }
        if names.count > 1 { arguments += ["--id", name] }
        let pid = try supervisor.start(name, arguments, logName: logName(name))
        let port = try await supervisor.waitForPort(pid)
        let all: [FaultProxy] = members.withLock {
            $0.coordinatorPorts[name] = port
            return $0.proxies.values.compactMap { $0.indices.contains(slot) ? $0[slot] : nil }
        }
        for proxy in all { proxy.setTarget(port: port) }
        return port
    }

    /// Starts every coordinator (the first leads; the others stand by). Returns their ports.
    public func startCoordinators() async throws -> [String: Int] {
        for name in coordinatorNames { try await startCoordinator(name) }
        return coordinatorPorts
    }

    public func killCoordinator(_ name: String? = nil) {
        let name = name ?? coordinatorNames[0]
        _ = members.withLock { $0.coordinatorPorts.removeValue(forKey: name) }
        supervisor.kill(name)
    }

    /// Starts (or restarts) worker `id` behind its proxy (made on its first start).
    public func startWorker(_ id: String) throws {
        let lifetime = layout.proxyLifetime
        let names = coordinatorNames
        let proxies: [FaultProxy] = try members.withLock { m in
            if let existing = m.proxies[id] { return existing }
            // A coordinator that is down gets its proxy anyway (aimed at its last port, re-aimed when it restarts).
            let ports = names.compactMap { m.coordinatorPorts[$0] }
            guard let any = ports.first else { throw SupervisorError("no coordinator to connect \(id) to") }
            let made = try names.map { try FaultProxy(targetPort: m.coordinatorPorts[$0] ?? any, lifetime: lifetime) }
            m.proxies[id] = made
            return made
        }
        let dial = proxies.map { "127.0.0.1:\($0.port)" }.joined(separator: ",")
        var arguments = ["worker", "--id", id, "--coordinator", dial, "--certs", layout.certs,
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

    /// Worker `id`'s proxies to the coordinators (one per coordinator).
    public func proxies(_ id: String) -> [FaultProxy] { members.withLock { $0.proxies[id] ?? [] } }

    /// The proxy between worker `id` and the database (PostgreSQL only).
    public func storeProxy(_ id: String) -> FaultProxy? { members.withLock { $0.storeProxies[id] } }

    public func pid(_ id: String) -> Int32? { supervisor.pid(id) }

    /// Stops everything: processes (graceful, then killed) and proxies.
    public func shutDown() {
        let all = members.withLock { Array($0.proxies.values.joined()) + Array($0.storeProxies.values) }
        for proxy in all { proxy.heal() }
        supervisor.terminateAll()
        for proxy in all { proxy.close() }
    }
}
