// SluiceWorker: the worker daemon. It owns the I/O around `WorkerCore` (SluiceRuntime's pure lease
// and partition logic): the gRPC session with the coordinator, the partition host, timers, and the
// service lifecycle. Decisions are the core's; nothing here decides when to drop, release or dial.
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import ServiceLifecycle
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
///
/// A `Service`: on graceful shutdown (SIGTERM) every partition takes a last checkpoint and is
/// released, the releases go out on the session, the session is closed from this side (a graceful
/// leave), and `run` returns; `shutdownGrace` bounds it. Cancellation (a second signal) ends at once.
public actor WorkerDaemon: Service {
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
        /// How long a graceful shutdown (last checkpoints, releases) may take before the worker stops anyway.
        public var shutdownGrace: Duration

        public init(id: String, coordinators: [(host: String, port: Int)], tls: TLSFiles?, statePath: String? = nil,
                    rate: Double? = nil, lanes: Int = 1, storeRetryLimit: Duration = .seconds(120),
                    shutdownGrace: Duration = .seconds(10)) {
            self.storeRetryLimit = storeRetryLimit
            self.id = id
            self.coordinators = coordinators
            self.tls = tls
            self.statePath = statePath
            self.rate = rate
            self.lanes = lanes
            self.shutdownGrace = shutdownGrace
        }
    }

    /// What the daemon's loop takes in: the core's inputs, plus what only the shell handles.
    private enum Step: Sendable {
        case core(WorkerCore.Input)
        /// The heartbeat timer fired: read the host's progress, then tell the core.
        case heartbeatTimer
        /// No retry cures it: stop with this error.
        case fatal(WorkerConfigurationError)
    }

    private let options: Options
    private let logger: Logger
    private var core: WorkerCore
    private var host: PartitionHost?
    private let steps: AsyncStream<Step>
    private nonisolated let feed: AsyncStream<Step>.Continuation
    /// The open session's outbox (nil between sessions), and the task running the connection.
    private var outbox: AsyncStream<Sluice_V1_WorkerMessage>.Continuation?
    private var connection: Task<Void, Never>?
    private var timers: [WorkerCore.Timer: Task<Void, Never>] = [:]
    private var hostEvents: Task<Void, Never>?
    /// The progress read for the heartbeat being sent.
    private var lastProgress: [Int: PartitionHost.Progress] = [:]
    private var lastEvents: Int64 = 0
    private var lastRateTime = ContinuousClock.now
    private let started = ContinuousClock.now
    private var stopped = false
    public nonisolated let stats = RunStats()

    public init(options: Options, logger: Logger) {
        self.options = options
        var logger = logger
        logger[metadataKey: "worker"] = "\(options.id)"
        self.logger = logger
        core = WorkerCore(settings: .init(coordinators: options.coordinators.count,
                                          graceMs: Int64(options.shutdownGrace.milliseconds)),
                          seed: UInt64.random(in: 0...UInt64.max))
        (steps, feed) = AsyncStream.makeStream(of: Step.self)
    }

    /// The partitions this worker runs now, with their progress.
    public func partitions() async -> [PartitionHost.Progress] { await host?.progress() ?? [] }

    /// Serves until graceful shutdown has released every partition (or its grace time passed), or
    /// until cancelled; throws a `WorkerConfigurationError` (no retry cures it) at once.
    public func run() async throws {
        let feed = self.feed
        try await withGracefulShutdownHandler {
            try await self.loop()
        } onGracefulShutdown: {
            feed.yield(.core(.shutdownRequested))
        }
    }

    private func loop() async throws {
        defer { tearDown() }
        feed.yield(.core(.start))
        // Ends on cancellation too (the stream's iterator returns nil): a second signal.
        for await step in steps {
            switch step {
            case .core(let input):
                await apply(input)
            case .heartbeatTimer:
                let progress = await host?.progress() ?? []
                lastProgress = Dictionary(uniqueKeysWithValues: progress.map { ($0.partition, $0) })
                await apply(.heartbeatDue(reported: progress.map { WorkerCore.Lease(partition: $0.partition, epoch: $0.epoch) }))
            case .fatal(let error):
                throw error
            }
            if stopped { return }
        }
    }

    private func tearDown() {
        for (_, timer) in timers { timer.cancel() }
        timers = [:]
        outbox?.finish()
        outbox = nil
        connection?.cancel()
        hostEvents?.cancel()
    }

    private var nowMs: Int64 { Int64((ContinuousClock.now - started).milliseconds) }

    private func apply(_ input: WorkerCore.Input) async {
        for action in core.handle(input, nowMs: nowMs) { await perform(action) }
    }

    /// Host calls are awaited in order (the host only sets flags and starts tasks: it never blocks).
    private func perform(_ action: WorkerCore.Action) async {
        switch action {
        case .connect(let index):
            let address = options.coordinators[index % options.coordinators.count]
            connection = Task { await self.connect(host: address.host, port: address.port) }
        case .startPartition(let lease):
            await host?.grant(partition: lease.partition, epoch: lease.epoch)
        case .revokePartition(let lease):
            partitionLogger(lease).info("partition \(lease.partition) revoked (epoch \(lease.epoch))")
            await host?.revoke(partition: lease.partition, epoch: lease.epoch)
        case .dropPartition(let lease):
            await host?.drop(partition: lease.partition, epoch: lease.epoch)
        case .releaseAll:
            logger.info("shutting down: releasing \(core.held.count) partitions")
            await host?.revokeAll()
        case .send(let report):
            outbox?.yield(Self.message(report))
        case .sendHeartbeat(let leases):
            outbox?.yield(heartbeat(leases))
        case .setTimer(let timer, let atMs):
            timers[timer]?.cancel()
            let delay = max(0, atMs - nowMs)
            if timer == .reconnect { logger.debug("reconnecting in \(delay) ms") }
            let feed = self.feed
            timers[timer] = Task {
                do { try await Task.sleep(for: .milliseconds(delay)) } catch { return }
                switch timer {
                case .heartbeat: feed.yield(.heartbeatTimer)
                case .reconnect: feed.yield(.core(.reconnectDue))
                case .grace: feed.yield(.core(.graceExpired))
                }
            }
        case .closeSession:
            logger.info("partitions released; leaving the coordinator")
            outbox?.finish()
            outbox = nil
        case .stop:
            if core.stopping && !core.held.isEmpty {
                logger.warning("shutdown grace time passed with \(core.held.count) partitions not released; their leases will lapse")
            }
            stopped = true
        }
    }

    private func partitionLogger(_ lease: WorkerCore.Lease) -> Logger {
        var logger = self.logger
        logger[metadataKey: "partition"] = .stringConvertible(lease.partition)
        logger[metadataKey: "epoch"] = .stringConvertible(lease.epoch)
        return logger
    }

    // MARK: The session

    /// Dials one coordinator, joins, and runs the session until it ends; the core hears how.
    private func connect(host: String, port: Int) async {
        let logger = self.logger, feed = self.feed
        do {
            let security: HTTP2ClientTransport.Posix.TransportSecurity = try options.tls?.client(serverHost: host, onRefusal: {
                logger.warning("refused the server at \(host):\(port): \($0)")
            }) ?? .plaintext
            let transport = try HTTP2ClientTransport.Posix(target: coordinatorTarget(host: host, port: port),
                                                           transportSecurity: security)
            try await withGRPCClient(transport: transport) { client in
                let coordinator = Sluice_V1_Coordinator.Client(wrapping: client)
                var join = Sluice_V1_JoinRequest()
                join.workerID = options.id
                join.version = "1"
                let joined = try await coordinator.join(join)
                try await self.setUp(joined)
                logger.info("worker \(options.id): joined (\(joined.partitions) partitions, lease \(joined.leaseTtlMs) ms)")
                let (messages, post) = AsyncStream.makeStream(of: Sluice_V1_WorkerMessage.self)
                post.yield(.with { $0.kind = .hello(.with { $0.workerID = options.id }) })
                await self.opened(post)
                feed.yield(.core(.joined(heartbeatIntervalMs: joined.heartbeatIntervalMs)))
                try await coordinator.session(requestProducer: { writer in
                    for await message in messages { try await writer.write(message) }
                }, onResponse: { response in
                    for try await message in response.messages {
                        switch message.kind {
                        case .grant(let grant):
                            feed.yield(.core(.grant(.init(partition: Int(grant.partition), epoch: grant.epoch))))
                        case .revoke(let revoke):
                            feed.yield(.core(.revoke(.init(partition: Int(revoke.partition), epoch: revoke.epoch))))
                        case .renewal(let renewal):
                            feed.yield(.core(.renewal(renewal.leases.map { .init(partition: Int($0.partition), epoch: $0.epoch) })))
                        case nil:
                            break
                        }
                    }
                })
            }
            closed()
            feed.yield(.core(.disconnected(reason: "the coordinator ended the session")))
        } catch let error as WorkerConfigurationError {
            closed()
            feed.yield(.fatal(error))
        } catch {
            closed()
            if !Task.isCancelled {
                logger.warning("connection to the coordinator lost (\(host):\(port): \(error)); retrying")
            }
            feed.yield(.core(.disconnected(reason: "\(error)")))
        }
    }

    private func opened(_ post: AsyncStream<Sluice_V1_WorkerMessage>.Continuation) { outbox = post }

    private func closed() {
        outbox?.finish()
        outbox = nil
    }

    /// The first join opens the job's source, sink and checkpoint store and starts the host.
    private func setUp(_ joined: Sluice_V1_JoinResponse) async throws {
        guard host == nil else { return }
        let job: JobSpec
        let sources: SourceFactory
        do {
            job = try JobSpec.parse(yaml: joined.jobYaml)
            sources = try SourceFactory(uri: joined.input, job: job)
                .throttled(to: options.rate)
            try SinkFactory.validate(uri: joined.output, job: job)
            if options.statePath == nil, joined.output.hasPrefix("kafka://") {
                // A Kafka topic holds no checkpoints: the default store would be a file of this
                // worker's own, and workers that do not share a store cannot fence each other.
                throw SinkError("a kafka:// sink needs a checkpoint store every worker shares: start each worker with --state postgres://… (or a SQLite path on storage they all mount)")
            }
        } catch {
            throw WorkerConfigurationError("the coordinator's job cannot run here: \(error); fix the coordinator's --job, --input or --output")
        }
        var logger = self.logger
        logger[metadataKey: "job"] = "\(job.name)"
        // An output directory or a store that belongs to another run stays refused however often
        // the worker retries: stop (exit 2). A store that cannot be reached is retried.
        let sink: any Sink, store: any CheckpointStoring
        do {
            (sink, store) = try await RunOutput.open(job: job, input: joined.input, output: joined.output,
                                                     statePath: options.statePath, partitions: sources.partitions,
                                                     storeRetryLimit: options.storeRetryLimit, logger: logger)
        } catch let refused as RunOutput.Refused {
            throw WorkerConfigurationError("\(refused); fix the coordinator's --output or this worker's --state")
        }
        guard self.host == nil else { return }  // another session set it up meanwhile
        let host = PartitionHost(job: job, sources: sources, store: store, sink: sink, stats: stats, rate: options.rate,
                                 lanes: Lanes(count: options.lanes), logger: logger)
        self.host = host
        // One consumer of the host's events for the daemon's whole life; sessions come and go.
        let feed = self.feed
        hostEvents = Task {
            for await event in host.events { feed.yield(.core(.host(event))) }
        }
    }

    // MARK: Messages

    static func message(_ report: WorkerCore.Report) -> Sluice_V1_WorkerMessage {
        var message = Sluice_V1_WorkerMessage()
        switch report {
        case let .released(lease, committed):
            message.kind = .released(.with { $0.partition = UInt32(lease.partition); $0.epoch = lease.epoch; $0.committedOffset = committed })
        case let .fenced(lease):
            message.kind = .fenced(.with { $0.partition = UInt32(lease.partition); $0.epoch = lease.epoch })
        case let .failed(lease, reason):
            message.kind = .failed(.with { $0.partition = UInt32(lease.partition); $0.epoch = lease.epoch; $0.reason = reason })
        }
        return message
    }

    private func heartbeat(_ leases: [WorkerCore.Lease]) -> Sluice_V1_WorkerMessage {
        let events = stats.events.current
        let now = ContinuousClock.now
        let seconds = (now - lastRateTime).seconds
        let rate = seconds > 0 ? Double(events - lastEvents) / seconds : 0
        lastEvents = events
        lastRateTime = now
        var heartbeat = Sluice_V1_Heartbeat()
        heartbeat.eventsPerSecond = rate
        heartbeat.partitions = leases.map { lease in
            let p = lastProgress[lease.partition]
            return .with {
                $0.partition = UInt32(lease.partition)
                $0.epoch = lease.epoch
                $0.offset = p?.offset ?? 0
                $0.committedOffset = p?.committedOffset ?? 0
                $0.watermark = p?.watermark ?? Int64.min
                $0.lag = p?.lag ?? 0
                $0.finished = p?.finished ?? false
            }
        }
        return .with { $0.kind = .heartbeat(heartbeat) }
    }
}
