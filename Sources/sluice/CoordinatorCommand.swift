import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import SluiceConnectors
import SluiceCoordinator
import SluiceJob
import SluiceOps
import SluiceStorage
import SluiceTLS

struct Coordinator: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The coordinator: leases partitions to workers over mutual TLS.")
    @OptionGroup var logging: LogOptions
    @Option(help: "Address to listen on (port 0: any free port, printed).") var listen = "127.0.0.1:7400"
    @OptionGroup var tls: TLSOptions
    @Option(help: "Job spec (YAML). Default: the tumbling bid job.") var job: String?
    @Option(help: "Input every worker reads (file:DIR or gen:…).") var input: String
    @Option(help: "Sink every worker writes (sqlite:PATH or file:DIR).") var output: String
    @Option(help: "The coordinator's durable leases and epochs (SQLite).") var state = "sluice-coordinator.db"
    @Option(help: "Keep leases and epochs in PostgreSQL instead (postgres://USER@HOST:PORT/DB; password from PGPASSWORD or a password file).") var store: String?
    @Option(help: "Lease time to live (ms).") var leaseTtlMs: Int64 = 6_000
    @Option(help: "Worker heartbeat interval (ms).") var heartbeatMs: Int64 = 2_000
    @Option(help: "Serve /metrics, /healthz, /readyz (200 only on the leader) on HOST:PORT.") var metrics: String?
    @Option(help: "This coordinator's name among those sharing the state, for people (default: HOST/--listen); the leadership is held by the process, so two with one name never share it.") var id: String?
    @Option(help: "Leadership lease among coordinators sharing the state (ms).") var leaderTtlMs: Int64 = 5_000

    func run() async throws {
        logging.bootstrap()
        let name = id ?? "\(ProcessInfo.processInfo.hostName)/\(listen)"
        let logger = SluiceLogging.logger("coordinator", ["coordinator": "\(name)"])
        /// A configuration error: one log line naming the field and the fix, exit 2.
        func refuse(_ error: Error) -> ExitCode {
            logger.critical("error: \(error)")
            return ExitCode(2)
        }
        let (host, port): (String, Int)
        do { (host, port) = try parseAddress(listen, option: "--listen") } catch { throw refuse(error) }
        guard leaderTtlMs >= 100 else { throw refuse(ValidationError("--leader-ttl-ms must be at least 100, got \(leaderTtlMs)")) }
        guard leaseTtlMs > 0, heartbeatMs > 0, heartbeatMs < leaseTtlMs else {
            throw refuse(ValidationError("--heartbeat-ms must be positive and below --lease-ttl-ms (\(leaseTtlMs))"))
        }
        let tlsFiles: TLSFiles?
        do {  // the certificates are checked before anything starts
            tlsFiles = try tls.files(identity: "coordinator", warn: { logger.warning("\($0)") })
            try tlsFiles?.validate(as: .coordinator)
        } catch { throw refuse(error) }
        let candidate = LeaderCandidate(name: name)
        let clusterJob: ClusterJob
        let ledger: any DurableLeaseLedger
        let leadershipStore: any LeadershipStore
        do {
            let yaml = try job.map { try String(contentsOfFile: $0, encoding: .utf8) } ?? defaultJobYAML
            let partitions = try validatedPartitions(jobYAML: yaml)
            clusterJob = ClusterJob(jobYAML: yaml, input: input, output: output, partitions: partitions,
                                    leaseTTLMs: leaseTtlMs, heartbeatIntervalMs: heartbeatMs)
            (ledger, leadershipStore) = try await coordinationStores(logger: logger)
        } catch {
            throw refuse(error)
        }
        let leadership = LeadershipLoop(candidate: candidate, ttlMs: leaderTtlMs, store: leadershipStore, logger: logger)
        if let problem = OpenFileLimit.raise() { logger.warning("\(problem)") }
        // Both ports are bound before this coordinator competes for the leadership: one that
        // cannot serve must not depose the leader.
        let gate = LeaderGate()
        let socket: BoundSocket
        // First in the group is shut down last: the signal watcher outlives every other service.
        var services: [any Service] = [SignalEscalation(logger: logger)]
        do {
            socket = try BoundSocket.bind(host: host, port: port, option: "--listen")
            if let metrics {
                let (h, p) = try parseAddress(metrics, option: "--metrics")
                // Ready only while leading: a Service then sends workers to the leader alone.
                let ops = try await OpsServer.start(host: h, port: p, ready: { gate.service != nil })
                logger.info("metrics on http://\(h):\(ops.port)/metrics")
                services.append(ops)
            }
        } catch {
            throw refuse(error)
        }
        // Calls are refused (unavailable) until this coordinator leads.
        let listening = ListeningSignal()
        services.append(CoordinatorRPCService(gate: gate, job: clusterJob, socket: socket, tls: tlsFiles, listening: listening) { bound in
            // Tools read the port from this stdout line.
            FileHandle.standardOutput.write(Data("coordinator listening on \(host):\(bound)\n".utf8))
            logger.info("listening on \(host):\(bound)")
        })
        services.append(LeaseTickerService(gate: gate))
        services.append(LeadershipService(leadership: leadership, ledger: ledger, gate: gate, listening: listening,
                                          partitions: clusterJob.partitions, leaseTTLMs: leaseTtlMs, logger: logger))
        var configuration = ServiceGroupConfiguration(
            services: services.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger)
        // Stepping down and resigning take a store round trip; open sessions end at their next
        // message. Past this bound the group is cancelled.
        configuration.maximumGracefulShutdownDuration = .seconds(10)
        let group = ServiceGroup(configuration: configuration)
        do {
            try await group.run()
        } catch let second as SignalEscalation.SecondSignal {
            throw ExitCode(128 + second.signal)
        } catch {
            throw refuse(error)
        }
        logger.info("stopped")
    }
}

extension Coordinator {
    /// Refuses, before any worker joins, what every worker would otherwise fail on for ever: a
    /// bad job, source or sink. Returns the source's partition count.
    func validatedPartitions(jobYAML: String) throws -> Int {
        let spec = try JobSpec.parse(yaml: jobYAML)
        let sources: SourceFactory
        do {
            sources = try SourceFactory(uri: input, job: spec)
        } catch {
            throw ValidationError("--input: \(error)")
        }
        do {
            try SinkFactory.validate(uri: output, job: spec)
        } catch {
            throw ValidationError("--output: \(error)")
        }
        return sources.partitions
    }

    /// The lease ledger and the leadership lease: both in the SQLite `--state` file, or both in
    /// PostgreSQL with `--store postgres://…`, each on a connection and an executor of its own.
    func coordinationStores(logger: Logger) async throws -> (any DurableLeaseLedger, any LeadershipStore) {
        guard let store else { return (try await SQLiteLeaseLedger(path: state), try await SQLiteLeadership(path: state)) }
        guard PostgresURL.isPostgres(store) else {
            throw ValidationError("--store must be a postgres:// URL (for a SQLite file, use --state), got '\(PostgresURL.redact(store))'")
        }
        let url = try PostgresURL(store)
        return (try await PostgresLeaseLedger(url: url, logger: logger), try await PostgresLeadership(url: url, logger: logger))
    }
}

/// The default job's YAML, for a coordinator started without --job.
let defaultJobYAML = """
    name: bids-tumbling
    window: {kind: tumbling, size_ms: 10000}
    aggregates: [count, {sum: price}, {max: price}]
    """
