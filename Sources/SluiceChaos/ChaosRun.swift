import Foundation
import Logging
import SluiceConnectors
import SluiceCore
import SluiceDrivers
import SluiceJob
import SluiceOracle
import SluiceRuntime
import SluiceStorage
import SluiceTLS
import SluiceWorkload
#if canImport(Glibc)
import Glibc
#endif

/// A suite the harness will not run as asked (exit 2): a bad suite, a store it cannot set up.
public struct ChaosRefusal: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// `sluice chaos run`: starts the cluster, drives the workload, injects the schedule's faults,
/// then checks the run against the oracle and the store's records and writes the report.
public struct ChaosRun: Sendable {
    public struct Options: Sendable {
        public var suitePath: String
        public var out: String
        public var seed: UInt64?
        /// The `sluice` binary for the children (default: this process's own).
        public var executable: String?
        public var progress: Bool
        public var build: String

        public init(suitePath: String, out: String, seed: UInt64? = nil, executable: String? = nil, progress: Bool = true, build: String) {
            self.suitePath = suitePath
            self.out = out
            self.seed = seed
            self.executable = executable
            self.progress = progress
            self.build = build
        }
    }

    let options: Options
    let logger: Logger

    public init(options: Options, logger: Logger) {
        self.options = options
        self.logger = logger
    }

    /// Ends the live progress line (it is redrawn in place, without a newline) before a log line.
    private func breakProgressLine() {
        if options.progress { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    func path(_ name: String) -> String { (options.out as NSString).appendingPathComponent(name) }

    /// Runs the suite; the report says whether every check passed. Throws `ChaosRefusal` (or a
    /// suite error) before anything starts when the suite cannot run here. Cancelling the task
    /// (`sluice chaos run` on SIGINT or SIGTERM) ends the run early: the faults are healed, the
    /// cluster is stopped and the report is written for what was committed so far, with a failed
    /// check saying the run was interrupted. (Cancelled before the cluster is up, it throws
    /// `CancellationError` after stopping what it started.)
    public func run() async throws -> ChaosReport {
        let suite = try Suite.load(path: options.suitePath)
        let schedule = Schedule.build(suite, seed: options.seed)
        if schedule.contains(where: { $0.kind == .fillDisk }), !FileManager.default.isExecutableFile(atPath: FaultInjector.prlimitPath) {
            throw ChaosRefusal("the fill_disk fault needs \(FaultInjector.prlimitPath) (util-linux)")
        }
        let fm = FileManager.default
        for kept in ["results.db", "state.db", "store.sql", "report.json"] where fm.fileExists(atPath: path(kept)) {
            throw ChaosRefusal("\(options.out) already holds a run (\(kept)); choose a new --out directory")
        }
        for dir in ["logs", "certs"] { try fm.createDirectory(atPath: path(dir), withIntermediateDirectories: true) }

        // The job, kept in DIR so the run can be verified again from there.
        var jobPath: String?
        var job = JobSpec.defaultBidsTumbling
        if let relative = suite.job {
            let base = ((options.suitePath as NSString).deletingLastPathComponent as NSString)
            let source = relative.hasPrefix("/") ? relative : base.appendingPathComponent(relative)
            job = try JobSpec.load(path: source)
            try? fm.removeItem(atPath: path("job.yaml"))
            try fm.copyItem(atPath: source, toPath: path("job.yaml"))
            jobPath = path("job.yaml")
        }

        // The input: the generator's stream, also written out as files (the same lines) to keep.
        let w = suite.workload, topology = suite.topology
        let config = WorkloadConfig(seed: w.seed, events: w.events, partitions: topology.partitions, keys: w.keys)
        if let problem = config.problem { throw ChaosRefusal("suite '\(suite.name)': workload: \(problem)") }
        try PartitionFiles.write(config, to: path("input")) { _ in }
        let generator = BidGenerator(config)
        let ends = Dictionary(uniqueKeysWithValues: (0..<topology.partitions).map { ($0, Int64(generator.eventCount(partition: $0))) })

        let added = schedule.filter { $0.kind == .addWorker }.count
        try DevelopmentCertificates.initialize(directory: path("certs"), workers: topology.workers + added, extraIdentities: ["operator"])
        var input = "gen:seed=\(w.seed),events=\(w.events),partitions=\(topology.partitions),keys=\(w.keys)"

        // Kafka: the broker (`sluice dev kafka`, a child of its own that outlives the cluster, so
        // the checks can read the result topic), its topics, and the input produced into it.
        var kafka: ChaosKafka?
        if suite.usesKafka {
            var topics: [String: Int] = [:]
            if suite.source == .kafka { topics[ChaosKafka.inputTopic] = topology.partitions }
            if suite.sink == .kafka {
                topics[ChaosKafka.outputTopic] = topology.partitions
                topics[ChaosKafka.progressTopic] = 1
            }
            kafka = try await ChaosKafka.start(brokers: suite.kafka.brokers, topics: topics, job: job.name, partitions: topology.partitions,
                                               sinkTopic: suite.sink == .kafka ? ChaosKafka.outputTopic : nil,
                                               logs: path("logs"), executable: options.executable)
        }
        defer { kafka?.shutDown() }
        if suite.source == .kafka, let kafka {
            let produced = try kafka.produce(files: try PartitionFiles.list(directory: path("input")), topic: ChaosKafka.inputTopic)
            logger.info("produced \(produced) lines of input/ into topic \(ChaosKafka.inputTopic) (\(topology.partitions) partitions) at \(kafka.bootstrap)")
            // A read hands the job everything in the consumer's local queue (up to 20,000 messages), and
            // a paced partition (the workers' --rate) then sleeps that block's worth before it reads,
            // and may checkpoint, again: 20 s for 10,000 messages at 500 events/s. A short queue and
            // small fetches keep blocks of about a thousand messages (2 s at 500 events/s).
            input = "kafka://\(kafka.bootstrap)/\(ChaosKafka.inputTopic)?stop=latest&queued.min.messages=1000&max.partition.fetch.bytes=32768"
        }

        // The store: SQLite files in DIR, or a PostgreSQL database (leases, checkpoints and sink in one).
        let postgres: ChaosPostgres?
        switch suite.store {
        case .sqlite:
            postgres = nil
        case .postgres(let url):
            let database = "sluice_chaos_" + UUID().uuidString.prefix(8).lowercased()
            postgres = try url.map { try ChaosPostgres.external(url: $0, database: database) }
                ?? ChaosPostgres.startThrowaway(database: database, logger: logger)
        }
        defer { postgres?.shutDown(keepingLogAt: path("logs/postgres.log")) }
        // The sink: the store's own (results.db or the database), or the Kafka result topic, whose
        // checkpoints (and outbox, late events, dead letters) go to the store every worker shares:
        // state.db, or the database.
        let storePath = path(suite.sink == .kafka ? "state.db" : "results.db")
        let outcomesPath = path("kafka-transactions.log")
        let output: String
        if suite.sink == .kafka, let kafka {
            output = "kafka://\(kafka.bootstrap)/\(ChaosKafka.outputTopic)"
        } else {
            output = postgres?.databaseURL ?? "sqlite:" + storePath
        }
        let layout = LocalCluster.Layout(certs: path("certs"), logs: path("logs"), input: input, output: output,
                                         coordinatorState: path("coordinator.db"), job: jobPath,
                                         leaseTTLMs: topology.leaseTTLMs, heartbeatMs: topology.heartbeatMs,
                                         rate: Double(w.events) / Double(topology.partitions) / w.seconds,
                                         proxyLifetime: suite.bounds.runSeconds + 120,
                                         postgres: postgres.map { ($0.databaseURL, $0.port) }, storeRetryMs: topology.storeRetryMs,
                                         workerState: suite.sink == .kafka && postgres == nil ? storePath : nil,
                                         // The mock applies no transaction rules: the workers log outcomes for the checks.
                                         workerEnvironment: suite.sink == .kafka ? [KafkaTransactionOutcomes.environmentVariable: outcomesPath] : [:],
                                         coordinators: topology.coordinators)
        let cluster = LocalCluster(layout: layout, executable: options.executable)
        defer { cluster.shutDown() }
        let injector = FaultInjector(cluster: cluster, store: postgres, kafka: kafka)
        let startDate = Date()
        let start = ContinuousClock.now
        func elapsed() -> Double { (ContinuousClock.now - start).seconds }
        let storeRecords = CommitLogSource(postgres.map { .postgres(url: $0.databaseURL) } ?? .sqlite(path: storePath))
        let observer = ClusterObserver(start: start, commitLog: storeRecords, tls: TLSFiles(directory: path("certs"), identity: "operator"))

        logger.info("suite '\(suite.name)' (\(schedule.count) faults\(options.seed.map { ", seed \($0)" } ?? suite.random.map { ", seed \($0.seed)" } ?? "")) in \(options.out)")
        for (i, f) in schedule.enumerated() { logger.info("\(String(format: "%2d. %6.1f s  ", i + 1, f.at))\(f.summary)") }
        await observer.setCoordinators(try await cluster.startCoordinators())
        for n in 1...topology.workers { try cluster.startWorker("worker-\(n)") }
        let observing = Task { await observer.run(limit: .seconds(Int(suite.bounds.runSeconds) + 60)) }

        // The schedule: inject each fault when due, heal it when its time comes.
        var records: [FaultRecord] = []
        /// Each record's fault as injected (a coordinator kill names the coordinator it killed).
        var injected: [FaultSpec] = []
        var heals: [(at: Double, record: Int)] = []
        var restartAttempts: [Int: Int] = [:]  // record → failed restarts of a killed coordinator
        var nextFault = 0
        var nextWorker = topology.workers + 1
        var finished = false
        var interruptedAt: Double?
        var lastProgress = -1.0
        let limit = suite.bounds.runSeconds
        for _ in 0..<Int(limit * 10) + 10 {
            let now = elapsed()
            if now > limit { break }
            if Task.isCancelled {
                interruptedAt = now
                break
            }
            while nextFault < schedule.count, schedule[nextFault].at <= now {
                var spec = schedule[nextFault]
                // A worker, the coordinator, the store or the broker's outage slot takes one fault at a
                // time: if the previous one on it has not healed yet (its heal came late), wait for it.
                if let resource = Schedule.resource(spec),
                   heals.contains(where: { records[$0.record].healedAt == nil && Schedule.resource(injected[$0.record]) == resource }) {
                    break
                }
                if spec.kind == .killCoordinator, topology.coordinators > 1 {
                    // The leader the harness last saw (only the leader answers status calls).
                    spec.target = await observer.leader ?? cluster.coordinatorNames[0]
                }
                var newID: String?
                if spec.kind == .addWorker {
                    newID = "worker-\(nextWorker)"
                    nextWorker += 1
                }
                let affected = await affectedPartitions(spec, observer: observer, ends: ends)
                let injectedAt = elapsed()
                let notes = await injector.inject(spec, newWorkerID: newID)
                var summary = spec.summary
                if let newID { summary += " (\(newID))" }
                records.append(FaultRecord(index: nextFault, kind: spec.kind, target: spec.target ?? newID, summary: summary, plannedAt: spec.at,
                                           injectedAt: injectedAt, healedAt: nil, affected: affected, notes: notes,
                                           recoverySeconds: nil, perPartition: [:]))
                injected.append(spec)
                if spec.kind == .killCoordinator { await observer.setCoordinators(cluster.coordinatorPorts) }
                if options.progress {
                    breakProgressLine()
                    logger.info(">> \(String(format: "%.1f", injectedAt)) s: \(summary): \(notes.joined(separator: "; "))")
                }
                if spec.kind.lasts || spec.restartAfter != nil { heals.append((injectedAt + (spec.duration ?? spec.restartAfter ?? 0), records.count - 1)) }
                nextFault += 1
            }
            // The store is down (a restart_store acting): a coordinator started now would give up on
            // it and exit, so a coordinator's restart waits for the store.
            let storeDown = heals.contains { injected[$0.record].kind == .restartStore && records[$0.record].healedAt == nil }
            for h in heals.indices where heals[h].at <= elapsed() {
                let index = heals[h].record
                let spec = injected[index]
                if spec.kind == .killCoordinator && storeDown { continue }
                let notes = await injector.heal(spec)
                if spec.kind == .killCoordinator, cluster.coordinatorPorts[spec.target ?? cluster.coordinatorNames[0]] == nil,
                   restartAttempts[index, default: 0] < 30 {
                    // It exited before listening (its store was unreachable): try again in a second.
                    restartAttempts[index, default: 0] += 1
                    records[index].notes += notes
                    heals[h].at = elapsed() + 1
                    continue
                }
                records[index].healedAt = elapsed()
                records[index].notes += notes
                if injected[index].kind == .killCoordinator { await observer.setCoordinators(cluster.coordinatorPorts) }
                if options.progress {
                    breakProgressLine()
                    logger.info("<< \(String(format: "%.1f", elapsed())) s: \(notes.joined(separator: "; "))")
                }
            }
            heals.removeAll { records[$0.record].healedAt != nil }
            let committed = await observer.committedOffsets()
            // Reaching the end of the input is not finishing: the owner then fires the last windows
            // in a commit of its own (which moves no offset) and, into Kafka, publishes them. A
            // paced partition can take a while between the two; the coordinator says when it is done.
            let allEnded = ends.allSatisfy { committed[$0.key] == $0.value }
            let allFinished = allEnded ? await observer.finishedPartitions().isSuperset(of: ends.keys) : false
            if allFinished && nextFault == schedule.count && heals.isEmpty {
                finished = true
                break
            }
            if options.progress, now - lastProgress >= 1 {
                lastProgress = now
                await printProgress(now: now, observer: observer, total: w.events, faults: records.count, of: schedule.count, heals: heals.count)
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
        let runSeconds = elapsed()
        // Whatever is still broken is mended before the cluster stops (a paused process would not die
        // gracefully; a limited one could not write its last words).
        for heal in heals {
            let notes = await injector.heal(injected[heal.record])
            records[heal.record].healedAt = elapsed()
            records[heal.record].notes += notes + ["healed at the end of the run"]
        }
        observing.cancel()
        await observing.value
        await observer.pollCommits()
        if options.progress || interruptedAt != nil {
            breakProgressLine()
            let why = finished ? "every partition finished" : interruptedAt != nil ? "interrupted" : "stopped at the \(format(limit)) s bound"
            logger.info("\(why) after \(String(format: "%.1f", runSeconds)) s; stopping the cluster")
        }
        cluster.shutDown()

        // Checks.
        let observations = await observer.observations
        for i in records.indices where records[i].kind == .addWorker {
            // A new worker's partitions: those it was given within the recovery bound.
            let t0 = records[i].injectedAt
            let id = records[i].target ?? ""
            records[i].affected = Array(Set(observations.owners.filter { $0.t >= t0 && $0.t <= t0 + suite.bounds.recoverySeconds }
                .flatMap { $0.held[id] ?? [] })).sorted()
        }
        RecoveryAnalysis.analyze(&records, observations: observations, ends: ends)
        var checks: [CheckResult] = []
        if options.progress { logger.info("checking the sink against the oracle and the store's records …") }
        let (oracle, rows) = suite.sink == .kafka
            ? try kafkaChecks(job: job, output: output, statePath: postgres?.databaseURL ?? storePath, outcomesPath: outcomesPath)
            : try oracleChecks(job: job, output: output)
        checks += oracle
        let (commits, claims) = try await storeRecords.logs()
        checks.append(CommitLogChecks.chain(commits))
        checks.append(CommitLogChecks.epochs(commits))
        checks.append(CommitLogChecks.fencing(commits: commits, claims: claims))
        checks.append(CommitLogChecks.reachedEnd(commits, expected: ends))
        checks.append(RecoveryAnalysis.check(records, bound: suite.bounds.recoverySeconds))
        if let interruptedAt {
            checks.append(CheckResult(name: "run not interrupted", passed: false, evidence: [
                "interrupted by a signal at \(String(format: "%.1f", interruptedAt)) s; the checks above judge what was committed until then",
            ]))
        }

        let jobFlag = jobPath == nil ? "" : " --job job.yaml"
        var reverify = [
            "sluice verify --input file:input\(jobFlag) --output sqlite:results.db",
            "sqlite3 results.db 'SELECT partition, seq, epoch, from_offset, to_offset FROM sluice_commits ORDER BY partition, seq'",
            "sqlite3 results.db 'SELECT id, partition, epoch, after_seq FROM sluice_claims ORDER BY id'",
        ]
        if suite.sink == .kafka {
            reverify = [
                "# the result topic lived in the in-memory broker and is gone with it; kafka-results.jsonl keeps its",
                "# read_committed view (messages of the transactions kafka-transactions.log records as committed)",
                "sqlite3 state.db 'SELECT partition, seq, epoch, from_offset, to_offset FROM sluice_commits ORDER BY partition, seq'",
                "sqlite3 state.db 'SELECT id, partition, epoch, after_seq FROM sluice_claims ORDER BY id'",
                "grep -c '^commit ' kafka-transactions.log; grep -c '^fenced ' kafka-transactions.log",
            ]
        }
        if let postgres {
            // The database is gone with the throwaway server; its dump is kept.
            let dumped = postgres.dump(to: path("store.sql"))
            if options.progress { logger.info("\(dumped)") }
            let db = "postgres://USER@HOST:PORT/sluice_chaos"
            reverify = [
                "createdb sluice_chaos && psql -q -d sluice_chaos -f store.sql   # on any PostgreSQL server",
                "sluice verify --input file:input\(jobFlag) --output \(db)",
                "psql -d sluice_chaos -c 'SELECT partition, seq, epoch, from_offset, to_offset FROM sluice_commits ORDER BY partition, seq'",
                "psql -d sluice_chaos -c 'SELECT id, partition, epoch, after_seq FROM sluice_claims ORDER BY id'",
            ]
        }
        let formatter = ISO8601DateFormatter()
        var report = ChaosReport(
            suite: suite.name, suiteFile: options.suitePath, store: suite.store.name,
            seed: suite.random == nil ? nil : (options.seed ?? suite.random?.seed), startedAt: formatter.string(from: startDate),
            build: options.build, workers: topology.workers, partitions: topology.partitions, events: w.events,
            eventsCommitted: commits.reduce(into: [Int: Int64]()) { $0[$1.partition] = max($0[$1.partition] ?? 0, $1.toOffset) }.values.reduce(0, +),
            runSeconds: runSeconds, finishedInTime: finished, interrupted: interruptedAt.map { _ in true },
            recoveryBoundSeconds: suite.bounds.recoverySeconds,
            passed: checks.allSatisfy(\.passed), checks: checks, faults: records, worstRecoverySeconds: RecoveryAnalysis.worst(records),
            partitionEnds: Dictionary(uniqueKeysWithValues: ends.map { (String($0.key), $0.value) }),
            reverify: reverify)
        report.rowsChecked = rows
        report.faultsByKind = Dictionary(records.map { ($0.kind.rawValue, 1) }, uniquingKeysWith: +)
        report.medianRecoverySeconds = RecoveryAnalysis.median(records)
        if suite.source == .kafka {
            report.source = "kafka: topic \(ChaosKafka.inputTopic), \(topology.partitions) partitions, read with stop=latest (sluice dev kafka, \(suite.kafka.brokers) brokers)"
        }
        if suite.sink == .kafka {
            report.sink = "kafka: topic \(ChaosKafka.outputTopic) exactly once (progress topic \(ChaosKafka.progressTopic)), checkpoints in \(postgres == nil ? "state.db" : "the database")"
        }
        try report.json().write(to: URL(fileURLWithPath: path("report.json")))
        try report.markdown().write(toFile: path("report.md"), atomically: true, encoding: .utf8)
        try Timeline.svg(report: report, observations: observations).write(toFile: path("timeline.svg"), atomically: true, encoding: .utf8)
        let encoder = JSONEncoder()
        try encoder.encode(observations).write(to: URL(fileURLWithPath: path("observations.json")))
        return report
    }

    /// The partitions a fault hits, from the coordinator's latest view: those its target holds,
    /// or every unfinished one for the coordinator. (A new worker's are found after the run.)
    private func affectedPartitions(_ spec: FaultSpec, observer: ClusterObserver, ends: [Int: Int64]) async -> [Int] {
        let committed = await observer.committedOffsets()
        let unfinished = ends.keys.filter { committed[$0] != ends[$0] }
        switch spec.kind {
        case .killCoordinator, .restartStore, .kafkaBrokerDown, .kafkaRequestErrors:
            return unfinished.sorted()
        case .kafkaLeaderChange:
            // An input partition is read by its Sluice partition alone; any partition may write to the result topic.
            guard spec.topic == .input else { return unfinished.sorted() }
            return unfinished.filter { $0 == spec.partition }
        case .addWorker:
            return []
        default:
            guard let target = spec.target, let sample = await observer.observations.owners.last else { return [] }
            return (sample.held[target] ?? []).filter { unfinished.contains($0) }.sorted()
        }
    }
}
