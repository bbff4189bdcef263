import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Does what a fault says to the local cluster, and undoes it when it heals. Every action is
/// real: signals to the processes, the proxy misbehaving, the kernel's file-size limit, the
/// PostgreSQL server stopped and started.
struct FaultInjector {
    let cluster: LocalCluster
    /// The PostgreSQL server of a `store: postgres` suite.
    let store: ChaosPostgres?
    /// The broker of a Kafka suite.
    let kafka: ChaosKafka?

    static func topicName(_ role: KafkaTopicRole) -> String {
        switch role {
        case .input: ChaosKafka.inputTopic
        case .output: ChaosKafka.outputTopic
        case .progress: ChaosKafka.progressTopic
        }
    }

    /// Injects `fault`; returns what happened, for the report (a failure to inject is noted, not
    /// thrown: the run goes on and the report says so).
    func inject(_ fault: FaultSpec, newWorkerID: String?) async -> [String] {
        let target = fault.target ?? ""
        switch fault.kind {
        case .killWorker:
            guard let pid = cluster.pid(target) else { return ["\(target) was not running"] }
            cluster.supervisor.kill(target)
            return ["SIGKILL \(target) (pid \(pid))"]
        case .killCoordinator:
            // `target`: the coordinator to kill (the harness names the leader it last saw); else the first.
            let name = fault.target ?? cluster.coordinatorNames[0]
            guard let pid = cluster.pid(name) else { return ["\(name) was not running"] }
            cluster.killCoordinator(name)
            return ["SIGKILL \(name) (pid \(pid))"]
        case .pauseWorker:
            guard let pid = cluster.pid(target) else { return ["\(target) was not running"] }
            cluster.supervisor.signal(target, SIGSTOP)
            return ["SIGSTOP \(target) (pid \(pid))"]
        case .cutWorker:
            let proxies = cluster.proxies(target)
            guard !proxies.isEmpty, let mode = fault.network else { return ["\(target) has no proxy"] }
            for proxy in proxies { proxy.apply(mode, direction: fault.direction) }
            return ["\(proxies.count == 1 ? "proxy" : "proxies") of \(target): \(mode.name) (\(fault.direction.rawValue))"]
        case .addWorker:
            guard let id = newWorkerID else { return ["no worker id left"] }
            do {
                try cluster.startWorker(id)
                return ["started \(id)"]
            } catch {
                return ["could not start \(id): \(error)"]
            }
        case .removeWorker:
            guard let pid = cluster.pid(target) else { return ["\(target) was not running"] }
            cluster.supervisor.signal(target, SIGTERM)
            return ["SIGTERM \(target) (pid \(pid)): graceful leave"]
        case .fillDisk:
            guard let pid = cluster.pid(target) else { return ["\(target) was not running"] }
            return [Self.setFileSizeLimit(pid: pid, limit: String(fault.fileSizeLimit))]
        case .restartStore:
            guard let store else { return ["restart_store needs the PostgreSQL store"] }  // refused when the suite is read
            do {
                try store.stopImmediately()
                return ["pg_ctl stop -m immediate (127.0.0.1:\(store.port))"]
            } catch {
                return ["could not stop PostgreSQL: \(error)"]
            }
        case .cutWorkerFromStore:
            guard let proxy = cluster.storeProxy(target), let mode = fault.network else { return ["\(target) has no proxy to the database"] }
            proxy.apply(mode, direction: fault.direction)
            return ["database proxy of \(target): \(mode.name) (\(fault.direction.rawValue))"]
        case .kafkaBrokerDown:
            guard let kafka, let broker = fault.broker else { return ["no Kafka broker"] }  // refused when the suite is read
            return kafka.brokerDown(broker)
        case .kafkaLeaderChange:
            guard let kafka, let broker = fault.broker, let partition = fault.partition else { return ["no Kafka broker"] }
            return kafka.leader(topic: Self.topicName(fault.topic), partition: partition, broker: broker)
        case .kafkaRequestErrors:
            guard let kafka, let api = fault.api, let count = fault.count else { return ["no Kafka broker"] }
            return kafka.requestErrors(api: api, count: count, error: fault.errorCode)
        }
    }

    /// Undoes a lasting fault, or restarts what a kill stopped.
    func heal(_ fault: FaultSpec) async -> [String] {
        let target = fault.target ?? ""
        switch fault.kind {
        case .killWorker:
            guard fault.restartAfter != nil else { return [] }
            do {
                try cluster.startWorker(target)
                return ["restarted \(target)"]
            } catch {
                return ["could not restart \(target): \(error)"]
            }
        case .killCoordinator:
            do {
                let name = fault.target ?? cluster.coordinatorNames[0]
                let port = try await cluster.startCoordinator(name)
                return ["restarted \(name) (port \(port))"]
            } catch {
                return ["could not restart the coordinator: \(error)"]
            }
        case .pauseWorker:
            cluster.supervisor.signal(target, SIGCONT)
            return ["SIGCONT \(target)"]
        case .cutWorker:
            for proxy in cluster.proxies(target) { proxy.heal() }
            return ["proxy of \(target): healed"]
        case .fillDisk:
            guard let pid = cluster.pid(target) else { return ["\(target) no longer runs"] }
            return [Self.setFileSizeLimit(pid: pid, limit: "unlimited")]
        case .restartStore:
            guard let store else { return [] }
            do {
                try store.startAgain()
                return ["PostgreSQL started again"]
            } catch {
                return ["could not start PostgreSQL again: \(error)"]
            }
        case .cutWorkerFromStore:
            cluster.storeProxy(target)?.heal()
            return ["database proxy of \(target): healed"]
        case .kafkaBrokerDown:
            guard let kafka, let broker = fault.broker else { return [] }
            return kafka.brokerUp(broker)
        case .addWorker, .removeWorker, .kafkaLeaderChange, .kafkaRequestErrors:
            return []
        }
    }

    /// `prlimit --pid PID --fsize=LIMIT:` sets the soft limit only (raising it back needs no
    /// privilege). With SIGXFSZ ignored (the harness starts workers so), a write past the limit
    /// fails with EFBIG, which SQLite reports as a failed write (SQLITE_FULL or SQLITE_IOERR): the
    /// checkpoint store's disk is full, for this process, without a filesystem of its own.
    static func setFileSizeLimit(pid: Int32, limit: String) -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: prlimitPath)
        process.arguments = ["--pid", String(pid), "--fsize=\(limit):"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
            process.waitUntilExit()
        } catch {
            return "prlimit failed to start: \(error)"
        }
        return process.terminationStatus == 0
            ? "prlimit --pid \(pid) --fsize=\(limit): (soft file-size limit)"
            : "prlimit --pid \(pid) --fsize=\(limit): exited \(process.terminationStatus)"
    }

    static let prlimitPath = "/usr/bin/prlimit"
}
