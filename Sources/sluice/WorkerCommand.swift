import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import SluiceOps
import SluiceTLS
import SluiceWorker

/// `sluice worker`: flags, validation, and the service group (the ops endpoint, the metrics
/// exporter, the daemon; SIGTERM/SIGINT shut it down gracefully, a second signal at once).
struct Worker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "A worker: runs the partitions the coordinator grants it.")
    @Option(help: "Coordinator address, or several separated by commas (tried in turn; the leader answers).") var coordinator = "127.0.0.1:7400"
    @Option(help: "Worker id: the name in its certificate's identity spiffe://sluice/worker/<id>, which is the default.") var id: String?
    @OptionGroup var tls: TLSOptions
    @Option(help: "Checkpoint store: a SQLite path or postgres://… (default: the sink's).") var state: String?
    @Option(help: "Throttle: events per second per partition (default: full speed).") var rate: Double?
    @Option(help: "Cores this worker's partitions may use; scale out with more workers.") var lanes = 1
    @Option(help: "Serve /metrics, /healthz, /readyz on HOST:PORT.") var metrics: String?
    @Option(help: "How long a PostgreSQL checkpoint store is retried (reconnecting) before the partition fails and the coordinator places it elsewhere (ms).")
    var storeRetryMs: Int64 = 120_000
    @Option(help: "On SIGTERM or SIGINT: how long the last checkpoints and lease releases may take before the worker exits anyway (ms); a second signal exits at once.")
    var shutdownGraceMs: Int64 = 10_000
    @OptionGroup var logging: LogOptions

    func run() async throws {
        logging.bootstrap()
        guard (100...3_600_000).contains(storeRetryMs) else {
            throw userError(ValidationError("--store-retry-ms must be between 100 and 3600000, got \(storeRetryMs)"))
        }
        guard (0...600_000).contains(shutdownGraceMs) else {
            throw userError(ValidationError("--shutdown-grace-ms must be between 0 and 600000, got \(shutdownGraceMs)"))
        }
        let coordinators = try coordinator.split(separator: ",").map { try parseAddress(String($0), option: "--coordinator") }
        guard !coordinators.isEmpty else { throw userError(ValidationError("--coordinator needs at least one HOST:PORT")) }
        guard (1...256).contains(lanes) else { throw userError(ValidationError("--lanes must be between 1 and 256, got \(lanes)")) }
        // Metrics first: components built before the bootstrap would not report.
        if metrics != nil { Observability.bootstrap() }
        if id == nil, tls.cert == nil {
            throw userError(ValidationError(tls.insecure
                ? "--id is required with --insecure (there is no certificate to take it from)"
                : "--id is required with --certs DIR (it picks worker files there); with --cert, --key and --ca the id defaults to the name in the certificate's spiffe://sluice/worker/<id>"))
        }
        let files: TLSFiles?
        let certificateIdentity: String?
        do {
            files = try tls.files(identity: id ?? "")
            // What no retry cures fails here: missing files, a key that is not the certificate's,
            // an expired certificate, one that is not a worker's.
            certificateIdentity = try files.map { try $0.validate(as: .worker).name }
        } catch {
            throw userError(error)
        }
        guard let id = id ?? certificateIdentity else {
            throw userError(ValidationError("--id is required: the certificate has no identity"))
        }
        if let certificateIdentity, certificateIdentity != id {
            // (A chain file is read for its first certificate: the leaf.)
            throw userError(ValidationError("--id \(id) does not match the certificate's identity spiffe://sluice/worker/\(certificateIdentity); pass --id \(certificateIdentity), or that worker's certificate"))
        }
        try checkRate(rate)
        let logger = SluiceLogging.logger("worker", ["worker": "\(id)"])
        let daemon = WorkerDaemon(options: .init(id: id, coordinators: coordinators, tls: files, statePath: state, rate: rate, lanes: lanes,
                                                 storeRetryLimit: .milliseconds(storeRetryMs),
                                                 shutdownGrace: .milliseconds(shutdownGraceMs)),
                                  logger: logger)
        // First in the group is shut down last: the signal watcher, then the endpoint, outlive the daemon.
        var services: [any Service] = [SignalEscalation(logger: logger)]
        if let metrics {
            let (h, p) = try parseAddress(metrics, option: "--metrics")
            let ops: OpsServer
            do { ops = try await OpsServer.start(host: h, port: p, ready: { true }) } catch { throw userError(error) }
            logger.info("worker \(id): metrics on http://\(h):\(ops.port)/metrics")
            services += [ops, WorkerMetrics.Exporter(daemon: daemon)]
        }
        services.append(daemon)
        var configuration = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint],
                                                      logger: logger)
        // Past the daemon's own grace (it stops by itself then), the group cancels what is left.
        configuration.maximumGracefulShutdownDuration = .milliseconds(shutdownGraceMs) + .seconds(5)
        do {
            try await ServiceGroup(configuration: configuration).run()
        } catch let second as SignalEscalation.SecondSignal {
            throw ExitCode(128 + second.signal)
        } catch {
            throw userError(error)
        }
        logger.info("worker \(id): released its partitions and stopped")
    }
}
