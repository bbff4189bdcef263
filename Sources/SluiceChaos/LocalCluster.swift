import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The cluster a suite runs against: a coordinator and workers as child processes on loopback,
/// each worker talking to the coordinator through a fault proxy of its own, and, with PostgreSQL,
/// to the database through a second one (the coordinator reaches the database directly).
public final class LocalCluster: @unchecked Sendable {
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
    }

    public let layout: Layout
    public let supervisor: ProcessSupervisor
    private let lock = NSLock()
    private var proxies: [String: FaultProxy] = [:]
    /// Worker id → its proxy to the database (PostgreSQL only).
    private var storeProxies: [String: FaultProxy] = [:]
    private var incarnations: [String: Int] = [:]
    public private(set) var coordinatorPort: Int?

    public init(layout: Layout, executable: String?) {
        self.layout = layout
        supervisor = ProcessSupervisor(logs: layout.logs, executable: executable)
    }

    /// `name`, `name.2`, `name.3`, … : one log per process, a restart keeps its predecessor's.
    private func logName(_ name: String) -> String {
        let n = lock.withLock { () -> Int in
            incarnations[name, default: 0] += 1
            return incarnations[name] ?? 1
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
        let all: [FaultProxy] = lock.withLock {
            coordinatorPort = port
            return Array(proxies.values)
        }
        for proxy in all { proxy.setTarget(port: port) }
        return port
    }

    public func killCoordinator() {
        lock.withLock { coordinatorPort = nil }
        supervisor.kill("coordinator")
    }

    /// Starts (or restarts) worker `id` behind its proxy (made on its first start).
    public func startWorker(_ id: String) throws {
        let proxy: FaultProxy = try lock.withLock {
            if let existing = proxies[id] { return existing }
            guard let port = coordinatorPort else { throw SupervisorError("no coordinator to connect \(id) to") }
            let proxy = try FaultProxy(targetPort: port, lifetime: layout.proxyLifetime)
            proxies[id] = proxy
            return proxy
        }
        var arguments = ["worker", "--id", id, "--coordinator", "127.0.0.1:\(proxy.port)", "--certs", layout.certs,
                         "--rate", String(format: "%.1f", layout.rate)]
        if let postgres = layout.postgres {
            let storeProxy: FaultProxy = try lock.withLock {
                if let existing = storeProxies[id] { return existing }
                let made = try FaultProxy(targetPort: postgres.port, lifetime: layout.proxyLifetime)
                storeProxies[id] = made
                return made
            }
            arguments += ["--state", ChaosPostgres.url(postgres.url, throughProxyPort: storeProxy.port)]
            if let retry = layout.storeRetryMs { arguments += ["--store-retry-ms", String(retry)] }
        }
        try supervisor.start(id, arguments, logName: logName(id), ignoreFileSizeSignal: true)
    }

    public func proxy(_ id: String) -> FaultProxy? { lock.withLock { proxies[id] } }

    /// The proxy between worker `id` and the database (PostgreSQL only).
    public func storeProxy(_ id: String) -> FaultProxy? { lock.withLock { storeProxies[id] } }

    public func pid(_ id: String) -> Int32? { supervisor.pid(id) }

    /// Stops everything: processes (graceful, then killed) and proxies.
    public func shutDown() {
        let all = lock.withLock { Array(proxies.values) + Array(storeProxies.values) }
        for proxy in all { proxy.heal() }
        supervisor.terminateAll()
        for proxy in all { proxy.close() }
    }
}
