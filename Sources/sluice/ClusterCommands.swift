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
import SluiceWorkload

/// Where TLS files come from: `--certs DIR` (as written by `sluice certs init`) or explicit files;
/// `--insecure` for plain TCP, loudly.
struct TLSOptions: ParsableArguments {
    @Option(help: "Directory written by `sluice certs init`.") var certs: String?
    @Option(help: "Certificate (PEM); overrides --certs.") var cert: String?
    @Option(help: "Private key (PEM); overrides --certs.") var key: String?
    @Option(help: "CA certificate to trust (PEM); overrides --certs.") var ca: String?
    @Flag(help: "Plain TCP without TLS, for local debugging only.") var insecure = false

    func files(identity: String) throws -> TLSFiles? {
        if insecure {
            note("WARNING: --insecure: plain TCP, no authentication; anyone who can connect can act as any worker. Never use this outside local debugging.")
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

struct Coordinator: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The coordinator: leases partitions to workers over mutual TLS.")
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
        let (host, port) = try parseAddress(listen, option: "--listen")
        guard leaderTtlMs >= 100 else { throw userError(ValidationError("--leader-ttl-ms must be at least 100, got \(leaderTtlMs)")) }
        guard leaseTtlMs > 0, heartbeatMs > 0, heartbeatMs < leaseTtlMs else {
            throw userError(ValidationError("--heartbeat-ms must be positive and below --lease-ttl-ms (\(leaseTtlMs))"))
        }
        let tlsFiles: TLSFiles?
        do {  // the certificates are checked before anything starts
            tlsFiles = try tls.files(identity: "coordinator")
            try tlsFiles?.validate(as: .coordinator)
        } catch { throw userError(error) }
        let name = id ?? "\(ProcessInfo.processInfo.hostName)/\(listen)"
        let candidate = LeaderCandidate(name: name)
        let clusterJob: ClusterJob
        let ledger: any LeaseLedger & Sendable
        let leadershipStore: any LeadershipStore
        let leadership: LeadershipLoop
        do {
            let yaml = try job.map { try String(contentsOfFile: $0, encoding: .utf8) } ?? defaultJobYAML
            let partitions = try validatedPartitions(jobYAML: yaml)
            clusterJob = ClusterJob(jobYAML: yaml, input: input, output: output, partitions: partitions,
                                    leaseTTLMs: leaseTtlMs, heartbeatIntervalMs: heartbeatMs)
            (ledger, leadershipStore) = try coordinationStores()
            leadership = LeadershipLoop(candidate: candidate, ttlMs: leaderTtlMs, store: leadershipStore, log: { note($0) })
        } catch {
            throw userError(error)
        }
        if let problem = OpenFileLimit.raise() { note("coordinator \(name): \(problem)") }
        // Both ports are bound before this coordinator competes for the leadership: one that
        // cannot serve must not depose the leader.
        let gate = LeaderGate()
        let socket: BoundSocket
        do {
            socket = try BoundSocket.bind(host: host, port: port, option: "--listen")
            if let metrics {
                let (h, p) = try parseAddress(metrics, option: "--metrics")
                // Ready only while leading: a Service then sends workers to the leader alone.
                let ops = try await OpsServer.start(host: h, port: p, ready: { gate.service != nil })
                note("coordinator: metrics on http://\(h):\(ops.port)/metrics")
            }
        } catch {
            throw userError(error)
        }
        // Calls are refused (unavailable) until this coordinator leads.
        let (listening, listened) = AsyncStream<Void>.makeStream()
        let server = Task {
            try await CoordinatorServer.serve(gate: gate, job: clusterJob, socket: socket, tls: tlsFiles) { bound in
                FileHandle.standardOutput.write(Data("coordinator listening on \(host):\(bound)\n".utf8))
                listened.finish()
            }
        }
        let partitions = clusterJob.partitions, leaseTTLMs = leaseTtlMs
        let leading = Task {
            for await _ in listening {}  // compete only once the server listens
            while !Task.isCancelled {
                let epoch = try await leadership.waitToLead()
                try ledger.fence(leaderEpoch: epoch)
                let service = try CoordinatorService(partitions: partitions, leaseTTLMs: leaseTTLMs, ledger: ledger,
                                                     log: { note($0) },
                                                     onDeposed: { note("coordinator \(name): \($0); stepping down") })
                await service.startTicker()
                gate.lead(with: service)
                note("coordinator \(name): leading (leader epoch \(epoch))")
                guard let reason = await leadership.keepLeading(epoch: epoch) else { return }
                // Step down: refuse calls, end the sessions (workers go on committing, fenced by
                // their epochs, and reconnect), then follow until this coordinator may lead again.
                gate.stepDown()
                await service.stop()
                note("coordinator \(name): stepped down: \(reason); following")
            }
        }
        let signals = onTermination {
            leading.cancel()
            leadership.resign()  // a follower takes over at once rather than after the lease
            server.cancel()
        }
        defer { _ = signals }
        do {
            try await server.value
        } catch {
            // SIGTERM cancels the server; gRPC reports that as a transport error wrapping the
            // cancellation. That is a clean stop.
            if server.isCancelled { return }
            throw userError(error)
        }
    }
}

extension Coordinator {
    /// Refuses, before any worker joins, what every worker would otherwise fail on for ever: a
    /// bad job, source or sink. Returns the source's partition count.
    func validatedPartitions(jobYAML: String) throws -> Int {
        let spec = try JobSpec.parse(yaml: jobYAML)
        let sources: SourceFactory
        do {
            sources = try SourceFactory(uri: input, schema: spec.pipeline.schema, changeEvents: spec.kind == .changes, jobName: spec.name)
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
    /// PostgreSQL with `--store postgres://…`.
    func coordinationStores() throws -> (any LeaseLedger & Sendable, any LeadershipStore) {
        guard let store else { return (try SQLiteLeaseLedger(path: state), try SQLiteLeadership(path: state)) }
        guard PostgresURL.isPostgres(store) else {
            throw ValidationError("--store must be a postgres:// URL (for a SQLite file, use --state), got '\(PostgresURL.redact(store))'")
        }
        let url = try PostgresURL(store)
        return (try PostgresLeaseLedger(url: url, log: { note($0) }), try PostgresLeadership(url: url, log: { note($0) }))
    }
}

/// The default job's YAML, for a coordinator started without --job.
let defaultJobYAML = """
    name: bids-tumbling
    window: {kind: tumbling, size_ms: 10000}
    aggregates: [count, {sum: price}, {max: price}]
    """
