import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import SluiceConnectors
import SluiceCore
import SluiceJob
import SluiceProtocol
import SluiceRuntime
import SluiceStorage
import SluiceTLS

/// An error that no retry cures (the job the coordinator hands out is invalid): the worker stops.
public struct WorkerConfigurationError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// `sluice worker`: joins the coordinator, runs the partitions it is granted, renews their leases
/// with heartbeats, and reconnects by itself when the coordinator goes away — while it is away the
/// partitions keep running, kept safe by the fenced commit. A partition stops at once when it is
/// revoked (after a last checkpoint), when its commit is fenced off, or when a heartbeat's answer
/// no longer renews it.
public actor WorkerDaemon {
    public struct Options: Sendable {
        public var id: String
        /// The coordinators to try in turn (the leader answers; followers refuse).
        public var coordinators: [(host: String, port: Int)]
        public var tls: TLSFiles?
        /// Overrides the checkpoint store path (default: the sink's).
        public var statePath: String?
        /// Events per second per partition (the demo throttles), nil for full speed.
        public var rate: Double?
        /// Cores the worker's partitions may use (see `Lanes`).
        public var lanes: Int
        /// How long a PostgreSQL checkpoint store is retried before the partition fails.
        public var storeRetryLimit: Duration

        public init(id: String, coordinators: [(host: String, port: Int)], tls: TLSFiles?, statePath: String? = nil,
                    rate: Double? = nil, lanes: Int = 1, storeRetryLimit: Duration = .seconds(120)) {
            self.storeRetryLimit = storeRetryLimit
            self.id = id
            self.coordinators = coordinators
            self.tls = tls
            self.statePath = statePath
            self.rate = rate
            self.lanes = lanes
        }
    }

    private let options: Options
    private let log: @Sendable (String) -> Void
    private var host: PartitionHost?
    private var heartbeatMs: Int64 = 2_000
    /// Partitions (with epochs) reported by each heartbeat not yet answered, oldest first.
    private var unanswered: [[(partition: Int, epoch: Int64)]] = []
    private var shuttingDown = false
    /// The current session's outbox, and what waits for the next session.
    private var post: AsyncStream<Sluice_V1_WorkerMessage>.Continuation?
    private var pending: [Sluice_V1_WorkerMessage] = []
    private var lastEvents: Int64 = 0
    private var lastRateTime = ContinuousClock.now
    public nonisolated let stats = RunStats()

    public init(options: Options, log: @escaping @Sendable (String) -> Void) {
        self.options = options
        self.log = log
    }

    public func requestShutdown() { shuttingDown = true }

    /// The partitions this worker runs now, with their progress.
    public func partitions() async -> [PartitionHost.Progress] { await host?.progress() ?? [] }

    /// Connects and serves until `requestShutdown()`, reconnecting with backoff and jitter after
    /// transient failures (coordinator away, refused, TLS handshake); throws a
    /// `WorkerConfigurationError` (no retry cures it) at once.
    public func run() async throws {
        var backoffMs = 100
        var attempt = 0
        while !shuttingDown {
            // Each failure moves on to the next coordinator: a follower refuses, the leader answers.
            let address = options.coordinators[attempt % max(1, options.coordinators.count)]
            attempt += 1
            do {
                try await connectOnce(host: address.host, port: address.port)
                backoffMs = 100
            } catch let error as WorkerConfigurationError {
                throw error  // no retry cures it: stop (the CLI exits 2)
            } catch {
                if shuttingDown { break }
                log("worker \(options.id): connection to the coordinator lost (\(address.host):\(address.port): \(error)); retrying in \(backoffMs) ms")
            }
            if shuttingDown { break }
            try? await Task.sleep(for: .milliseconds(backoffMs + Int.random(in: 0...(backoffMs / 2))))
            backoffMs = min(backoffMs * 2, 2_000)
        }
    }

    private func connectOnce(host: String, port: Int) async throws {
        let id = options.id, log = self.log
        let security: HTTP2ClientTransport.Posix.TransportSecurity = try options.tls?.client(serverHost: host, onRefusal: {
            log("worker \(id): refused the server at \(host):\(port): \($0)")
        }) ?? .plaintext
        let transport = try HTTP2ClientTransport.Posix(target: coordinatorTarget(host: host, port: port),
                                                       transportSecurity: security)
        try await withGRPCClient(transport: transport) { client in
            let coordinator = Sluice_V1_Coordinator.Client(wrapping: client)
            var join = Sluice_V1_JoinRequest()
            join.workerID = options.id
            join.version = "1"
            let joined = try await coordinator.join(join)
            try await setUp(joined)
            log("worker \(options.id): joined (\(joined.partitions) partitions, lease \(joined.leaseTtlMs) ms)")
            try await session(coordinator)
        }
    }

    /// The first join opens the job's source, sink and checkpoint store and starts the host.
    private func setUp(_ joined: Sluice_V1_JoinResponse) async throws {
        heartbeatMs = max(50, joined.heartbeatIntervalMs)
        guard host == nil else { return }
        let job: JobSpec
        let sources: SourceFactory
        do {
            job = try JobSpec.parse(yaml: joined.jobYaml)
            sources = try SourceFactory(uri: joined.input, schema: job.pipeline.schema, changeEvents: job.kind == .changes, jobName: job.name)
                .throttled(to: options.rate)
            try SinkFactory.validate(uri: joined.output, job: job)
        } catch {
            throw WorkerConfigurationError("the coordinator's job cannot run here: \(error); fix the coordinator's --job, --input or --output")
        }
        // An output directory or a store that belongs to another run stays refused however often
        // the worker retries: stop (exit 2). A store that cannot be reached is retried.
        let sink: any Sink, store: any CheckpointStoring
        do {
            (sink, store) = try await RunOutput.open(job: job, input: joined.input, output: joined.output,
                                                     statePath: options.statePath, partitions: sources.partitions,
                                                     storeRetryLimit: options.storeRetryLimit, log: log)
        } catch let refused as RunOutput.Refused {
            throw WorkerConfigurationError("\(refused); fix the coordinator's --output or this worker's --state")
        }
        let host = PartitionHost(job: job, sources: sources, store: store, sink: sink, stats: stats, rate: options.rate,
                                 lanes: Lanes(count: options.lanes), log: log)
        self.host = host
        // One consumer of the host's events for the daemon's whole life; sessions come and go.
        Task { [weak self] in
            for await event in host.events {
                var message = Sluice_V1_WorkerMessage()
                switch event {
                case let .released(partition, epoch, committed):
                    message.kind = .released(.with { $0.partition = UInt32(partition); $0.epoch = epoch; $0.committedOffset = committed })
                case let .fenced(partition, epoch):
                    message.kind = .fenced(.with { $0.partition = UInt32(partition); $0.epoch = epoch })
                case let .failed(partition, epoch, reason):
                    // Not a fencing: the coordinator backs off and places the partition elsewhere.
                    message.kind = .failed(.with { $0.partition = UInt32(partition); $0.epoch = epoch; $0.reason = String(reason.prefix(500)) })
                case .finished:
                    continue  // reported in heartbeats
                }
                await self?.send(message)
            }
        }
    }

    private func send(_ message: Sluice_V1_WorkerMessage) {
        if let post { post.yield(message) } else { pending.append(message) }
    }

    private func session(_ coordinator: Sluice_V1_Coordinator.Client<HTTP2ClientTransport.Posix>) async throws {
        guard let host else { return }
        unanswered = []
        let (outbox, post) = AsyncStream.makeStream(of: Sluice_V1_WorkerMessage.self)
        var hello = Sluice_V1_Hello()
        hello.workerID = options.id
        post.yield(.with { $0.kind = .hello(hello) })
        for message in pending { post.yield(message) }
        pending = []
        self.post = post
        defer { self.post = nil }

        try await withThrowingDiscardingTaskGroup { group in
            // Heartbeats: renew what we hold, report progress; stop when shutting down.
            group.addTask { [weak self] in
                while let self, await !self.isShuttingDown {
                    post.yield(await self.heartbeat())
                    // Sleep in slices, so that a SIGTERM starts the release at once.
                    let next = ContinuousClock.now + .milliseconds(Int(await self.heartbeatMs))
                    while ContinuousClock.now < next, await !self.isShuttingDown {
                        try await Task.sleep(for: .milliseconds(20))
                    }
                }
                await host.releaseAll()
                try? await Task.sleep(for: .milliseconds(200))  // let the releases go out
                post.finish()
            }
            try await coordinator.session(requestProducer: { writer in
                for await message in outbox { try await writer.write(message) }
            }, onResponse: { [weak self] response in
                for try await message in response.messages { await self?.handle(message) }
            })
            group.cancelAll()
        }
    }

    private var isShuttingDown: Bool { shuttingDown }

    private func heartbeat() async -> Sluice_V1_WorkerMessage {
        let progress = await host?.progress() ?? []
        unanswered.append(progress.map { ($0.partition, $0.epoch) })
        let events = stats.events.current
        let now = ContinuousClock.now
        let seconds = (now - lastRateTime).seconds
        let rate = seconds > 0 ? Double(events - lastEvents) / seconds : 0
        lastEvents = events
        lastRateTime = now
        var heartbeat = Sluice_V1_Heartbeat()
        heartbeat.eventsPerSecond = rate
        heartbeat.partitions = progress.map { p in
            .with {
                $0.partition = UInt32(p.partition)
                $0.epoch = p.epoch
                $0.offset = p.offset
                $0.committedOffset = p.committedOffset
                $0.watermark = p.watermark
                $0.lag = p.lag
                $0.finished = p.finished
            }
        }
        return .with { $0.kind = .heartbeat(heartbeat) }
    }

    private func handle(_ message: Sluice_V1_CoordinatorMessage) async {
        guard let host else { return }
        switch message.kind {
        case .grant(let grant):
            await host.grant(partition: Int(grant.partition), epoch: grant.epoch)
        case .revoke(let revoke):
            log("worker \(options.id): partition \(revoke.partition) revoked (epoch \(revoke.epoch))")
            await host.revoke(partition: Int(revoke.partition), epoch: revoke.epoch)
        case .renewal(let renewal):
            // Whatever the answered heartbeat reported and the renewal leaves out is no longer ours.
            guard !unanswered.isEmpty else { return }
            let reported = unanswered.removeFirst()
            let renewed = Set(renewal.leases.map { "\($0.partition)/\($0.epoch)" })
            for (partition, epoch) in reported where !renewed.contains("\(partition)/\(epoch)") {
                await host.drop(partition: partition, epoch: epoch)
            }
        case nil:
            break
        }
    }
}
