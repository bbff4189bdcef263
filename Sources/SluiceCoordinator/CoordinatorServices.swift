import Logging
import ServiceLifecycle
import SluiceOps
import SluiceTLS

// The coordinator daemon as swift-service-lifecycle services, composed by `sluice coordinator`
// in one `ServiceGroup`: the gRPC server, the lease ticker and the leadership loop (and the
// metrics endpoint, which the command adds). The group shuts them down in reverse order on
// SIGTERM or SIGINT: the leadership first (step down: refuse calls, end sessions, resign, so a
// follower takes over at once), then the ticker, then the server.

/// Fires once the gRPC server listens: the leadership is competed for only then (a coordinator
/// that cannot serve must not depose the leader).
public final class ListeningSignal: Sendable {
    private let stream: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation

    public init() { (stream, continuation) = AsyncStream.makeStream(of: Void.self) }

    public func fire() { continuation.finish() }

    /// Returns once `fire()` was called (at once if it already was).
    public func wait() async {
        for await _ in stream {}
    }
}

/// The gRPC server, until the graceful shutdown.
public struct CoordinatorRPCService: Service {
    let gate: LeaderGate
    let job: ClusterJob
    let socket: BoundSocket
    let tls: TLSFiles?
    let listening: ListeningSignal
    let onListening: @Sendable (Int) -> Void

    public init(gate: LeaderGate, job: ClusterJob, socket: BoundSocket, tls: TLSFiles?, listening: ListeningSignal,
                onListening: @escaping @Sendable (Int) -> Void) {
        self.gate = gate
        self.job = job
        self.socket = socket
        self.tls = tls
        self.listening = listening
        self.onListening = onListening
    }

    public func run() async throws {
        try await CoordinatorServer.serve(gate: gate, job: job, socket: socket, tls: tls, onListening: { port in
            onListening(port)
            listening.fire()
        }, until: {
            try? await gracefulShutdown()
        })
    }
}

/// Expires leases: ticks the leading service every `intervalMs`, until the graceful shutdown.
public struct LeaseTickerService: Service {
    let gate: LeaderGate
    let intervalMs: Int

    public init(gate: LeaderGate, intervalMs: Int = 200) {
        self.gate = gate
        self.intervalMs = intervalMs
    }

    public func run() async throws {
        let gate = gate, interval = intervalMs
        try? await cancelWhenGracefulShutdown {
            while true {
                try await Task.sleep(for: .milliseconds(interval))
                await gate.service?.tick()
            }
        }
    }
}

/// Competes for the leadership once the server listens; while leading, runs a `CoordinatorService`
/// behind the gate; steps down when the leadership is lost and competes again. On the graceful
/// shutdown it steps down and resigns, so that a follower leads at once.
public struct LeadershipService: Service {
    let leadership: LeadershipLoop
    let ledger: any DurableLeaseLedger
    let gate: LeaderGate
    let listening: ListeningSignal
    let partitions: Int
    let leaseTTLMs: Int64
    let logger: Logger

    public init(leadership: LeadershipLoop, ledger: any DurableLeaseLedger, gate: LeaderGate, listening: ListeningSignal,
                partitions: Int, leaseTTLMs: Int64, logger: Logger) {
        self.leadership = leadership
        self.ledger = ledger
        self.gate = gate
        self.listening = listening
        self.partitions = partitions
        self.leaseTTLMs = leaseTTLMs
        self.logger = logger
    }

    public func run() async throws {
        let this = self
        try? await cancelWhenGracefulShutdown {
            await this.listening.wait()
            try await this.lead()
        }
        let service = gate.service
        gate.stepDown()
        await service?.stop()
        await leadership.resign()
    }

    private func lead() async throws {
        while true {
            let epoch = try await leadership.waitToLead()
            let service: CoordinatorService
            do {
                let logger = logger
                service = try await CoordinatorService(partitions: partitions, leaseTTLMs: leaseTTLMs, ledger: ledger, leaderEpoch: epoch,
                                                       logger: logger,
                                                       onDeposed: { logger.warning("\($0); stepping down") })
            } catch {
                // The ledger cannot be read: let another coordinator try, and try again later.
                logger.error("cannot load the lease ledger (\(error)); resigning the leadership")
                await leadership.resign()
                try await Task.sleep(for: .milliseconds(max(100, leadership.ttlMs / 5)))
                continue
            }
            gate.lead(with: service)
            logger.notice("leading (leader epoch \(epoch))", metadata: ["leader_epoch": .stringConvertible(epoch)])
            guard let reason = await leadership.keepLeading(epoch: epoch) else { return }
            // Step down: refuse calls, end the sessions (workers go on committing, fenced by
            // their epochs, and reconnect), then follow until this coordinator may lead again.
            gate.stepDown()
            await service.stop()
            logger.warning("stepped down: \(reason); following")
        }
    }
}
