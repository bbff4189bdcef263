import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import SluiceChaos
import SluiceCoordinator
import SluiceProtocol
import SluiceTLS
import SluiceWorkload
import SluiceRuntime

/// Cluster benchmarks: real processes over mutual TLS on loopback.
extension Benchmarks {
    // MARK: cluster.tumbling: one worker, then two, on the same input (8 partitions, 1 s checkpoints)

    func clusterBenchmarks(root: String) async throws {
        let input = (root as NSString).appendingPathComponent("cluster-input")
        note("bench: writing \(grouped(Int64(clusterEvents))) events to \(input)")
        try? FileManager.default.removeItem(atPath: input)
        try PartitionFiles.write(WorkloadConfig(seed: 13, events: clusterEvents, partitions: 8), to: input)
        let certs = (root as NSString).appendingPathComponent("certs")
        try DevelopmentCertificates.initialize(directory: certs, workers: 2, extraIdentities: ["operator"])
        var one = Double.infinity, two = Double.infinity
        for i in 0..<repeats {
            // Alternate, so that drift in the machine's load hits both alike.
            one = min(one, try await clusterRun(root: root, certs: certs, input: input, workers: 1, name: "one\(i)"))
            two = min(two, try await clusterRun(root: root, certs: certs, input: input, workers: 2, name: "two\(i)"))
        }
        let perOne = Double(clusterEvents) / one, perTwo = Double(clusterEvents) / two
        print("cluster.tumbling.one_worker.events_per_s: \(Int(perOne)) events/s")
        print("cluster.tumbling.events_per_s: \(Int(perTwo)) events/s")
        print("cluster.tumbling.scaling: \(String(format: "%.2f", perTwo / perOne))x")
    }

    /// Seconds from starting the workers to every partition finished and committed.
    private func clusterRun(root: String, certs: String, input: String, workers: Int, name: String) async throws -> Double {
        let scratch = (root as NSString).appendingPathComponent(name)
        try? FileManager.default.removeItem(atPath: scratch)
        let logs = (scratch as NSString).appendingPathComponent("logs")
        try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let children = ProcessSupervisor(logs: logs)
        defer { children.killAll() }
        let coordinator = try children.start("coordinator", [
            "coordinator", "--listen", "127.0.0.1:0", "--certs", certs, "--input", "file:\(input)",
            // By default the file sink: each partition writes its own files, so the workers share
            // no sink lock (one SQLite sink file serializes every worker's inserts; see the README).
            "--output", clusterSink == "sqlite" ? "sqlite:" + (scratch as NSString).appendingPathComponent("results.db")
                                                : "file:" + (scratch as NSString).appendingPathComponent("results"),
            "--state", (scratch as NSString).appendingPathComponent("coordinator.db"), "--heartbeat-ms", "200"])
        let port = try await children.waitForPort(coordinator)
        let start = ContinuousClock.now
        for n in 1...workers {
            _ = try children.start("worker-\(n)", ["worker", "--id", "worker-\(n)", "--coordinator", "127.0.0.1:\(port)",
                                                   "--certs", certs, "--lanes", "1"])
        }
        let tls = TLSFiles(directory: certs, identity: "operator")
        while ContinuousClock.now - start < .seconds(600) {
            try await Task.sleep(for: .milliseconds(50))
            guard let status = try? await fetchStatus(host: "127.0.0.1", port: port, tls: tls) else { continue }
            if status.partitions.count == 8, status.partitions.allSatisfy({ $0.state == "finished" }) {
                let elapsed = (ContinuousClock.now - start).seconds
                note("bench: cluster run \(name) (\(workers) worker\(workers == 1 ? "" : "s"), lanes 1): \(String(format: "%.2f", elapsed)) s")
                children.terminateAll()
                return elapsed
            }
        }
        throw BenchError("bench cluster run \(name) did not finish in 600 s; logs in \(logs)")
    }

    // MARK: coordinator.heartbeats_per_s: 200 TLS sessions against one coordinator pinned to one core

    func heartbeatBenchmark(root: String) async throws {
        let sessions = heartbeatSessions, partitions = 1_000
        let certs = (root as NSString).appendingPathComponent("hb-certs")
        try DevelopmentCertificates.initialize(directory: certs, workers: sessions, extraIdentities: ["operator"])
        let logs = (root as NSString).appendingPathComponent("hb-logs")
        try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
        let children = ProcessSupervisor(logs: logs)
        defer { children.killAll() }
        let coordinator = try children.start("coordinator", [
            "coordinator", "--listen", "127.0.0.1:0", "--certs", certs,
            "--input", "gen:seed=1,events=\(partitions),partitions=\(partitions)",
            "--output", "sqlite:" + (root as NSString).appendingPathComponent("hb-results.db"),
            "--state", (root as NSString).appendingPathComponent("hb-coordinator.db"), "--lease-ttl-ms", "60000"])
        let port = try await children.waitForPort(coordinator)
        // The coordinator on core 0 (its later threads inherit it), this load generator on the others.
        pin(coordinator, cpus: "0")
        pin(getpid(), cpus: ProcessInfo.processInfo.activeProcessorCount > 1 ? "1-\(ProcessInfo.processInfo.activeProcessorCount - 1)" : "0")

        let renewals = RunStats.Counter(), opened = RunStats.Counter()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for n in 1...sessions {
                group.addTask {
                    do {
                        try await heartbeatSession(worker: "worker-\(n)", port: port, certs: certs, window: heartbeatWindow,
                                                   renewals: renewals, opened: opened)
                    } catch where !Task.isCancelled {
                        note("bench: session of worker-\(n) failed: \(error)")
                        throw error
                    }
                }
            }
            let ready = ContinuousClock.now
            while Int(opened.current) < sessions, ContinuousClock.now - ready < .seconds(60) {
                try await Task.sleep(for: .milliseconds(100))
            }
            guard Int(opened.current) == sessions else {
                throw BenchError("only \(Int(opened.current)) of \(sessions) sessions opened; logs in \(logs)")
            }
            // Let the joins' rebalances settle: every partition granted, none moving.
            let operatorTLS = TLSFiles(directory: certs, identity: "operator")
            while ContinuousClock.now - ready < .seconds(120) {
                if let status = try? await fetchStatus(host: "127.0.0.1", port: port, tls: operatorTLS),
                   status.workers.count == sessions, status.partitions.allSatisfy({ $0.state == "granted" }) { break }
                try await Task.sleep(for: .milliseconds(200))
            }
            note("bench: \(sessions) sessions settled after \(String(format: "%.1f", (ContinuousClock.now - ready).seconds)) s")
            let before = renewals.current, start = ContinuousClock.now
            let coordinatorCPUBefore = cpuSeconds(of: coordinator), loadCPUBefore = cpuSeconds(of: getpid())
            try await Task.sleep(for: .seconds(heartbeatSeconds))
            let elapsed = (ContinuousClock.now - start).seconds, answered = Double(renewals.current - before)
            let coordinatorCPU = cpuSeconds(of: coordinator) - coordinatorCPUBefore
            let loadCPU = cpuSeconds(of: getpid()) - loadCPUBefore
            print("coordinator.heartbeats_per_s: \(Int(answered / elapsed)) messages/s")
            note("bench: \(sessions) TLS sessions, \(heartbeatWindow) heartbeats in flight each, \(partitions) partitions, coordinator pinned to one core")
            // Who is the bottleneck: a coordinator near 1.00 core is saturated; one well below it
            // waits for the load generator.
            note("bench: the coordinator used \(String(format: "%.2f", coordinatorCPU / elapsed)) of its core "
                 + "(\(Int(answered / max(coordinatorCPU, 0.001))) heartbeats per CPU-second), "
                 + "the load generator \(String(format: "%.2f", loadCPU / elapsed)) of its cores")
            group.cancelAll()
        }
        children.terminateAll()
    }

    /// User and system CPU seconds a process has used so far, all its threads (`/proc/PID/stat`); 0 if unreadable.
    private func cpuSeconds(of pid: Int32) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return 0 }
        // After the command name in parentheses: state is field 3, utime 14, stime 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    private func pin(_ pid: Int32, cpus: String) {
        let taskset = Process()
        taskset.executableURL = URL(fileURLWithPath: "/usr/bin/taskset")
        taskset.arguments = ["-a", "-p", "-c", cpus, String(pid)]
        taskset.standardOutput = FileHandle.nullDevice
        do {
            try taskset.run()
            taskset.waitUntilExit()
        } catch {
            note("bench: warning: cannot pin process \(pid) with taskset (\(error)); figures are for the whole machine")
        }
    }
}

/// One worker's session as fast as the coordinator answers: a window of heartbeats in flight, each
/// renewal answered by the next heartbeat. Grants are held and reported; revocations are released.
private func heartbeatSession(worker: String, port: Int, certs: String, window: Int, renewals: RunStats.Counter, opened: RunStats.Counter) async throws {
    let transport = try HTTP2ClientTransport.Posix(target: .ipv4(address: "127.0.0.1", port: port),
                                                   transportSecurity: try TLSFiles(directory: certs, identity: worker).client(serverHost: "127.0.0.1"))
    try await withGRPCClient(transport: transport) { client in
        let coordinator = Sluice_V1_Coordinator.Client(wrapping: client)
        _ = try await coordinator.join(.with { $0.workerID = worker; $0.version = "1" })
        let (outbox, post) = AsyncStream.makeStream(of: Sluice_V1_WorkerMessage.self)
        post.yield(.with { $0.kind = .hello(.with { $0.workerID = worker }) })
        for _ in 0..<window { post.yield(heartbeat(held: [:])) }
        opened.add(1)
        try await coordinator.session(requestProducer: { writer in
            for await message in outbox { try await writer.write(message) }
        }, onResponse: { response in
            var held: [UInt32: Int64] = [:]
            for try await message in response.messages {
                switch message.kind {
                case .renewal:
                    renewals.add(1)
                    post.yield(heartbeat(held: held))
                case .grant(let grant):
                    held[grant.partition] = grant.epoch
                case .revoke(let revoke):
                    held[revoke.partition] = nil
                    post.yield(.with { $0.kind = .released(.with {
                        $0.partition = revoke.partition; $0.epoch = revoke.epoch
                    }) })
                default:
                    break
                }
            }
        })
    }
}

private func heartbeat(held: [UInt32: Int64]) -> Sluice_V1_WorkerMessage {
    .with { $0.kind = .heartbeat(.with { hb in
        hb.partitions = held.map { p, epoch in .with { $0.partition = p; $0.epoch = epoch } }
    }) }
}
