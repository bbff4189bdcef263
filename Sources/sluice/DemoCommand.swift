import ArgumentParser
import Foundation
import SluiceChaos
import SluiceCoordinator
import SluiceConnectors
import SluiceDrivers
import SluiceJob
import SluiceOracle
import SluiceVerification
import SluiceProtocol
import SluiceRuntime
import SluiceStorage
import SluiceTLS
import SluiceWorkload

/// `sluice demo`: a coordinator and three workers on this machine over mutual TLS, one worker
/// SIGKILLed midway and a new one started later, then the output checked against the oracle.
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a local cluster (coordinator + 3 workers), kill a worker midway, add one, verify exactly-once.")

    @Option(help: "Working directory (default: a new temporary one).") var dir: String?
    @Option(help: "Events in all (8 partitions). Default 2,400,000; with --kafka 160,000 (the mock cluster keeps about 4 MB per partition).")
    var events: Int?
    @Option(help: "Seconds the run should last (the generator is throttled to fit).") var seconds = 30.0
    @Option(help: "Seconds after the start to SIGKILL worker-2.") var killAt = 10.0
    @Option(help: "Seconds after the start to add worker-4.") var addAt = 18.0
    @Option(help: "The workload: bids (CSV of integers, generated on the fly) or orders (JSON orders with string customer ids, decimals, duplicates and bad lines, written to files first; the job is jobs/orders-revenue.yaml).")
    var workload: String = "bids"
    @Flag(help: "Read the orders from a Kafka topic: librdkafka's in-memory mock cluster (3 brokers) in this process, an 8-partition topic of JSON orders produced first, the workers reading it with a kafka:// source (implies --workload orders).")
    var kafka = false
    @Option(help: "Run the whole demo on PostgreSQL (postgres://USER@HOST:PORT/DB): the coordinator's leases, the workers' checkpoints and the sink (table demo_results). Its Sluice tables in that database are dropped first.") var store: String?

    func run() async throws {
        let root = dir ?? (NSTemporaryDirectory() as NSString).appendingPathComponent("sluice-demo-\(getpid())")
        let logs = (root as NSString).appendingPathComponent("logs")
        try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
        let certs = (root as NSString).appendingPathComponent("certs")
        var output = "sqlite:" + (root as NSString).appendingPathComponent("results.db")
        var coordinatorStore = ["--state", (root as NSString).appendingPathComponent("coordinator.db")]
        if let store {
            guard PostgresURL.isPostgres(store) else { throw ValidationError("--store must be a postgres:// URL") }
            try PostgresDemoDatabase.reset(store)
            output = PostgresDemoDatabase.sinkURL(store)
            coordinatorStore = ["--store", store]
        }
        guard var kind = Workload(rawValue: workload) else { throw ValidationError("--workload must be bids or orders, got '\(workload)'") }
        if kafka { kind = .orders }
        let events = self.events ?? (kafka ? 160_000 : 2_400_000)
        if kafka, events > 200_000 {
            // About 150 bytes an order: beyond ~25,000 per partition the mock trims the oldest.
            throw ValidationError("--events \(events) with --kafka: librdkafka's mock cluster keeps about 4 MB per partition (about 25,000 orders) and trims older messages; use --events 200000 or fewer")
        }
        var input = "gen:seed=42,events=\(events),partitions=8"
        // The oracle reads the files; the cluster reads `source` (the files, or the Kafka topic).
        var source: String?
        var broker: KafkaMockCluster?
        var job = JobSpec.defaultBidsTumbling
        var jobArguments: [String] = []
        if kind == .orders {
            let files = (root as NSString).appendingPathComponent("orders")
            try? FileManager.default.removeItem(atPath: files)
            try PartitionFiles.write(WorkloadConfig(seed: 42, events: events, partitions: 8), workload: .orders, format: .json, to: files)
            let jobPath = (root as NSString).appendingPathComponent("orders-revenue.yaml")
            try OrderGenerator.revenueJob.write(toFile: jobPath, atomically: true, encoding: .utf8)
            job = try JobSpec.load(path: jobPath)
            input = "file:" + files
            jobArguments = ["--job", jobPath]
            if kafka {
                let cluster = try KafkaMockCluster(brokers: 3)
                broker = cluster
                source = try Demo.produceOrders(from: files, into: cluster)
            }
        }
        _ = broker  // the mock cluster lives as long as the demo
        let rate = Double(events) / 8 / seconds
        for file in ["results.db", "results.db-wal", "results.db-shm", "coordinator.db", "coordinator.db-wal", "coordinator.db-shm"] {
            try? FileManager.default.removeItem(atPath: (root as NSString).appendingPathComponent(file))
        }
        print("Sluice demo in \(root)")
        try DevelopmentCertificates.initialize(directory: certs, workers: 4, extraIdentities: ["operator"])
        print("  certificates: a development CA, the coordinator, worker-1 … worker-4 (mutual TLS)")

        let children = ProcessSupervisor(logs: logs)
        defer { children.killAll() }
        let coordinator = try children.start("coordinator", [
            "coordinator", "--listen", "127.0.0.1:0", "--certs", certs, "--input", source ?? input, "--output", output,
            "--heartbeat-ms", "1000"] + coordinatorStore + jobArguments)
        let port = try await children.waitForPort(coordinator)
        print("  coordinator on 127.0.0.1:\(port); input \(source ?? input), throttled to about \(Int(seconds)) s; sink \(PostgresURL.redact(output))")
        func startWorker(_ n: Int) throws -> Int32 {
            try children.start("worker-\(n)", ["worker", "--id", "worker-\(n)", "--coordinator", "127.0.0.1:\(port)",
                                               "--certs", certs, "--rate", String(Int(rate))])
        }
        for n in 1...3 { _ = try startWorker(n) }
        print("  workers 1, 2, 3 started; worker-2 will be killed at \(Int(killAt)) s, worker-4 added at \(Int(addAt)) s\n")

        let tls = TLSFiles(directory: certs, identity: "operator")
        let started = Date()
        var killedAt: Date?
        var orphaned: [UInt32] = []
        var recovered: [UInt32: Double] = [:]
        var added = false
        let deadline = started.addingTimeInterval(seconds * 6 + 120)
        var last: Sluice_V1_StatusResponse?
        while Date() < deadline {
            try await Task.sleep(for: .milliseconds(500))
            let elapsed = Date().timeIntervalSince(started)
            guard let status = try? await fetchStatus(host: "127.0.0.1", port: port, tls: tls) else { continue }
            last = status
            if killedAt == nil, elapsed >= killAt, let w2 = status.workers.first(where: { $0.workerID == "worker-2" }), !w2.partitions.isEmpty {
                orphaned = w2.partitions
                children.kill("worker-2")
                killedAt = Date()
                print("\n  >> SIGKILL worker-2 (held partitions \(orphaned.map(String.init).joined(separator: ",")))")
            }
            if let killedAt {
                for p in orphaned where recovered[p] == nil {
                    if let s = status.partitions.first(where: { $0.partition == p }), !s.owner.isEmpty, s.owner != "worker-2" {
                        recovered[p] = Date().timeIntervalSince(killedAt)
                        print("\n  >> partition \(p) resumed on \(s.owner) after \(String(format: "%.1f", recovered[p] ?? 0)) s")
                    }
                }
            }
            if !added, elapsed >= addAt {
                _ = try startWorker(4)
                added = true
                print("\n  >> worker-4 started")
            }
            let done = status.partitions.reduce(Int64(0)) { $0 + $1.committedOffset }
            let finished = status.partitions.filter { $0.state == "finished" }.count
            let owners = status.workers.map { "\($0.workerID):\($0.partitions.map(String.init).joined(separator: ","))" }.joined(separator: "  ")
            let line = String(format: "\r  %5.1fs  committed %@/%@  finished %d/8  %@", elapsed,
                              grouped(done) as NSString, grouped(Int64(events)) as NSString, finished, owners as NSString)
            FileHandle.standardOutput.write(Data((line.padding(toLength: 118, withPad: " ", startingAt: 0)).utf8))
            if finished == 8, added { break }
        }
        print("")
        guard let last, last.partitions.allSatisfy({ $0.state == "finished" }) else {
            print("FAIL: the run did not finish in time; logs in \(logs)")
            throw ExitCode(1)
        }
        children.terminateAll()
        print("\nall partitions finished; verifying against the oracle …")
        let verification = try Verification.verify(job: job, input: input, output: output)
        print(verification.report())
        let times = orphaned.map { p in recovered[p].map { String(format: "partition %d: %.1f s", p, $0) } ?? "partition \(p): not seen" }
        print("recovery after SIGKILL of worker-2 (lease 6 s): \(times.joined(separator: ", "))")
        print("epochs: " + last.partitions.map { "\($0.partition):\($0.epoch)" }.joined(separator: " "))
        if !verification.passed { throw ExitCode(1) }
    }

    /// An 8-partition topic `orders` holding the generated files' records, partition by partition
    /// and in order (so that the oracle over the files is the reference), each keyed by its
    /// customer id as a producer of orders would key it. Returns the source URI.
    static func produceOrders(from directory: String, into cluster: KafkaMockCluster) throws -> String {
        try cluster.createTopic("orders", partitions: try PartitionFiles.list(directory: directory).count)
        let count = try KafkaTopicLoader.load(directory: directory, bootstrap: cluster.bootstrapServers, topic: "orders",
                                              key: KafkaTopicLoader.customerKey)
        print("  Kafka: librdkafka's in-memory mock cluster (3 brokers, a test broker) at \(cluster.bootstrapServers); \(grouped(Int64(count))) JSON orders produced to topic orders (8 partitions)")
        return "kafka://\(cluster.bootstrapServers)/orders?stop=latest"
    }
}
