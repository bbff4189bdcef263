import ArgumentParser
import Dispatch
import Foundation
import Metrics
import SluiceConnectors
import SluiceCoordinator
import SluiceJob
import SluiceOps
import SluiceProtocol
import SluiceStorage
import SluiceRuntime
import SluiceTLS
import SluiceWorker
import SluiceWorkload

/// Where TLS files come from: `--certs DIR` (as written by `sluice certs init`) or explicit files;
/// `--insecure` for plain TCP, loudly.
struct TLSOptions: ParsableArguments {
    @Option(help: "Directory written by `sluice certs init`.") var certs: String?
    @Option(help: "Certificate (PEM); overrides --certs.") var cert: String?
    @Option(help: "Private key (PEM); overrides --certs.") var key: String?
    @Option(help: "CA certificate to trust (PEM); overrides --certs.") var ca: String?
    @Flag(help: "Plain TCP without TLS, for local debugging only.") var insecure = false

    func files(identity: String, warn: (String) -> Void = { note($0) }) throws -> TLSFiles? {
        if insecure {
            warn("WARNING: --insecure: plain TCP, no authentication; anyone who can connect can act as any worker. Never use this outside local debugging.")
            return nil
        }
        if let cert, let key, let ca { return TLSFiles(certificate: cert, key: key, ca: ca) }
        guard let certs else {
            throw ValidationError("no TLS identity: pass --certs DIR (from `sluice certs init`), or --cert, --key and --ca; or --insecure for plain TCP")
        }
        var files = TLSFiles(directory: certs, identity: identity)
        if let cert { files.certificate = cert }
        if let key { files.key = key }
        if let ca { files.ca = ca }
        return files
    }
}

func parseAddress(_ text: String, option: String) throws -> (host: String, port: Int) {
    let parts = text.split(separator: ":", omittingEmptySubsequences: false)
    guard parts.count == 2, let port = Int(parts[1]), (0...65_535).contains(port), !parts[0].isEmpty else {
        throw ValidationError("\(option) must be HOST:PORT (for example 127.0.0.1:7400), got '\(text)'")
    }
    return (String(parts[0]), port)
}

/// Runs `body` until SIGTERM or SIGINT, then calls `stop`.
func onTermination(_ stop: @escaping @Sendable () async -> Void) -> [any DispatchSourceSignal] {
    [SIGTERM, SIGINT].map { sig in
        signal(sig, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
        source.setEventHandler { Task { await stop() } }
        source.resume()
        return source
    }
}

struct Certs: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Development certificates.", subcommands: [Init.self])

    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write a development CA, a coordinator certificate, worker certificates and an operator certificate (for `sluice status`).")
        @Option(help: "Output directory.") var dir: String
        @Option(help: "Number of worker certificates (worker-1 …).") var workers: Int = 8

        func run() throws {
            guard workers >= 0 else { throw userError(ValidationError("--workers must be >= 0")) }
            do {
                let ids = try DevelopmentCertificates.initialize(directory: dir, workers: workers, extraIdentities: ["operator"])
                print("wrote ca.pem and \(ids.count) certificates (\(ids.joined(separator: ", "))) to \(dir)")
            } catch {
                throw userError(error)
            }
        }
    }
}

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

    func run() async throws {
        guard (100...3_600_000).contains(storeRetryMs) else {
            throw userError(ValidationError("--store-retry-ms must be between 100 and 3600000, got \(storeRetryMs)"))
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
        let daemon = WorkerDaemon(options: .init(id: id, coordinators: coordinators, tls: files, statePath: state, rate: rate, lanes: lanes,
                                                 storeRetryLimit: .milliseconds(storeRetryMs)),
                                  log: { note($0) })
        if let metrics {
            let (h, p) = try parseAddress(metrics, option: "--metrics")
            let ops = try await OpsServer.start(host: h, port: p, ready: { true })
            note("worker \(id): metrics on http://\(h):\(ops.port)/metrics")
            Task { await WorkerMetrics.export(from: daemon) }
        }
        let signals = onTermination { await daemon.requestShutdown() }
        defer { _ = signals }
        do {
            try await daemon.run()
        } catch {
            throw userError(error)
        }
        note("worker \(id): released its partitions and stopped")
    }
}
