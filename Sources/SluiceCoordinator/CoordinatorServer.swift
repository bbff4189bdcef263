import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import NIOCore
import NIOSSL
import SluiceOps
import SluiceProtocol
import SluiceTLS
import Synchronization

/// What the coordinator tells every worker when it joins.
public struct ClusterJob: Sendable {
    public var jobYAML: String
    public var input: String
    public var output: String
    public var partitions: Int
    public var leaseTTLMs: Int64
    public var heartbeatIntervalMs: Int64

    public init(jobYAML: String, input: String, output: String, partitions: Int, leaseTTLMs: Int64, heartbeatIntervalMs: Int64) {
        self.jobYAML = jobYAML
        self.input = input
        self.output = output
        self.partitions = partitions
        self.leaseTTLMs = leaseTTLMs
        self.heartbeatIntervalMs = heartbeatIntervalMs
    }
}

/// The service while this coordinator leads; nil while it follows (calls are then refused with
/// `unavailable`, and a worker tries the next coordinator).
public final class LeaderGate: Sendable {
    private let current = Mutex<CoordinatorService?>(nil)
    public init() {}
    public var service: CoordinatorService? { current.withLock { $0 } }
    public func lead(with service: CoordinatorService) { current.withLock { $0 = service } }
    /// Stops serving: every call and open session is refused from now on.
    public func stepDown() { current.withLock { $0 = nil } }
}

/// The gRPC face of `CoordinatorService`. Every call is bound to the identity in the caller's
/// certificate: only a worker-role certificate joins, and only as itself (so it renews, releases
/// or reports only its own leases); only an operator-role certificate reads the status.
struct CoordinatorRPC: Sluice_V1_Coordinator.SimpleServiceProtocol {
    let gate: LeaderGate
    let job: ClusterJob
    /// Plain TCP (`--insecure`): there is no certificate, so the claimed id is trusted.
    let insecure: Bool

    /// The service, if this coordinator leads.
    private var service: CoordinatorService {
        get throws {
            guard let service = gate.service else {
                throw RPCError(code: .unavailable, message: "this coordinator is a follower; try the leader")
            }
            return service
        }
    }

    /// The caller's verified identity (its leaf's `spiffe://sluice/<role>/<name>`), which must be
    /// of `role`.
    private func caller(_ role: ClusterIdentity.Role, context: ServerContext) throws -> ClusterIdentity {
        guard let posix = context.transportSpecific as? HTTP2ServerTransport.Posix.Context,
              let certificate = posix.peerCertificate else {
            throw RPCError(code: .unauthenticated, message: "no client certificate")
        }
        do {
            return try ClusterIdentity.require(role, of: certificate)
        } catch {
            throw RPCError(code: .permissionDenied, message: "refused: \(error)")
        }
    }

    /// A worker's id: the name in its worker-role certificate, which must be the id it claims.
    private func identity(claimed: String, context: ServerContext) throws -> String {
        if insecure { return claimed }
        let identity = try caller(.worker, context: context)
        guard identity.name == claimed else {
            throw RPCError(code: .permissionDenied, message: "certificate of '\(identity.uri)' cannot speak for '\(claimed)'")
        }
        return identity.name
    }

    func join(request: Sluice_V1_JoinRequest, context: ServerContext) async throws -> Sluice_V1_JoinResponse {
        let id = try identity(claimed: request.workerID, context: context)
        let service = try self.service
        try await service.join(id)
        var response = Sluice_V1_JoinResponse()
        response.workerID = id
        response.partitions = UInt32(job.partitions)
        response.leaseTtlMs = job.leaseTTLMs
        response.heartbeatIntervalMs = job.heartbeatIntervalMs
        response.jobYaml = job.jobYAML
        response.input = job.input
        response.output = job.output
        return response
    }

    func session(request: RPCAsyncSequence<Sluice_V1_WorkerMessage, any Error>,
                 response: RPCWriter<Sluice_V1_CoordinatorMessage>, context: ServerContext) async throws {
        var worker: (id: String, session: UUID)?
        var changes: AsyncStream<SessionChange>.Continuation?
        defer { changes?.finish() }
        let service = try self.service
        do {
            try await withThrowingDiscardingTaskGroup { group in
                for try await message in request {
                    guard let current = worker else {
                        guard case .hello(let claimed)? = WorkerSessionMessage(message) else {
                            throw RPCError(code: .invalidArgument, message: "the first message of a session must be hello")
                        }
                        let id = try identity(claimed: claimed, context: context)
                        let (session, outbound) = try await service.openSession(id)
                        worker = (id, session)
                        group.addTask {
                            for await message in outbound { try await response.write(message.proto) }
                        }
                        // Releases, fencings and failures change the core and wait for a durable
                        // write: they run in order on a task of their own, so that the heartbeats
                        // behind them in the stream are read and answered meanwhile (a stalled
                        // store must not silence a healthy worker).
                        let (stream, continuation) = AsyncStream.makeStream(of: SessionChange.self)
                        changes = continuation
                        group.addTask {
                            for await change in stream {
                                switch change {
                                case .message(let inbound): try await service.handle(id, inbound)
                                case .leave:
                                    await service.closeSession(id, id: session)
                                    await service.leave(id)
                                }
                            }
                        }
                        continue
                    }
                    // A session belongs to the service it opened with: one that stepped down ends it.
                    guard gate.service === service else {
                        throw RPCError(code: .unavailable, message: "this coordinator stepped down; try the leader")
                    }
                    switch WorkerSessionMessage(message) {
                    case .heartbeat(let progress, let eventsPerSecond)?:
                        let renewed = try await service.renew(current.id, progress: progress, eventsPerSecond: eventsPerSecond)
                        // Written from here, beside the outbound task's grants and revocations: the
                        // writer takes concurrent writes, and a renewal only extends leases the
                        // worker reported holding, so its order against those messages is free.
                        try await response.write(CoordinatorService.Outbound.renewal(renewed).proto)
                    case .change(let inbound)?:
                        changes?.yield(.message(inbound))
                    case .hello, nil:
                        throw RPCError(code: .invalidArgument, message: "unexpected message in a session")
                    }
                }
                // The worker closed its side: a graceful leave, after the changes it sent before.
                changes?.yield(.leave)
                changes?.finish()
            }
        } catch {
            if let current = worker { await service.closeSession(current.id, id: current.session) }
            throw error
        }
    }

    func status(request: Sluice_V1_StatusRequest, context: ServerContext) async throws -> Sluice_V1_StatusResponse {
        if !insecure { _ = try caller(.operator, context: context) }
        let snapshot = await (try self.service).snapshot()
        var response = Sluice_V1_StatusResponse()
        response.partitions = snapshot.partitions.enumerated().map { p, s in
            var status = Sluice_V1_PartitionStatus()
            status.partition = UInt32(p)
            status.owner = s.owner ?? ""
            status.epoch = s.epoch
            status.committedOffset = s.committedOffset
            status.watermark = s.watermark
            status.lag = s.lag
            status.finished = s.finished
            status.state = s.finished && s.owner != nil ? "finished" : s.state.rawValue
            return status
        }
        response.workers = snapshot.workers.map { w in
            var status = Sluice_V1_WorkerStatus()
            status.workerID = w.id
            status.partitions = w.partitions.map(UInt32.init)
            status.eventsPerSecond = w.eventsPerSecond
            status.lastHeartbeatMsAgo = w.lastHeartbeatMsAgo
            return status
        }
        return response
    }
}

/// What a session's ordered change task does: a message that changes the core, or the graceful
/// leave at the end of the stream.
enum SessionChange: Sendable {
    case message(CoordinatorService.Inbound)
    case leave
}

extension CoordinatorService.Outbound {
    var proto: Sluice_V1_CoordinatorMessage {
        var message = Sluice_V1_CoordinatorMessage()
        switch self {
        case let .grant(partition, epoch, ttl):
            var grant = Sluice_V1_Grant()
            grant.partition = UInt32(partition)
            grant.epoch = epoch
            grant.leaseTtlMs = ttl
            message.kind = .grant(grant)
        case let .revoke(partition, epoch):
            var revoke = Sluice_V1_Revoke()
            revoke.partition = UInt32(partition)
            revoke.epoch = epoch
            message.kind = .revoke(revoke)
        case let .renewal(leases):
            var renewal = Sluice_V1_Renewal()
            renewal.leases = leases.map { l in
                var lease = Sluice_V1_Lease()
                lease.partition = UInt32(l.partition)
                lease.epoch = l.epoch
                return lease
            }
            message.kind = .renewal(renewal)
        }
        return message
    }
}

/// Runs the coordinator's gRPC server until cancelled.
public enum CoordinatorServer {
    /// Serves on `socket` (bound by the caller, so that a taken address fails before anything
    /// else starts); `onListening` receives the bound port. Serves until `until` returns (the
    /// graceful shutdown, for `CoordinatorRPCService`), then stops the server, letting open calls
    /// end. Calls reach the service `gate` holds, once this coordinator leads.
    public static func serve(gate: LeaderGate, job: ClusterJob, socket: BoundSocket, tls: TLSFiles?,
                             limits: ConnectionLimits = ConnectionLimits(),
                             onListening: @Sendable (Int) async -> Void,
                             until: @Sendable () async -> Void) async throws {
        let security: HTTP2ServerTransport.Posix.TransportSecurity = try tls?.server() ?? .plaintext
        let transport = HTTP2ServerTransport.Posix(listeningSocketDescriptor: Int(socket.descriptor), transportSecurity: security,
                                                   config: transportConfig(limits: limits, tls: tls != nil))
        let rpc = CoordinatorRPC(gate: gate, job: job, insecure: tls == nil)
        try await withGRPCServer(transport: transport, services: [rpc]) { server in
            let address = try await transport.listeningAddress
            await onListening(address.ipv4?.port ?? socket.port)
            await until()
            // Sessions are open calls: end them, or the server would wait for them.
            let service = gate.service
            gate.stepDown()
            await service?.stop()
        }
    }

    /// Idle established connections close after `limits.idleTimeout` (a worker's session is an
    /// open call, so it never idles); a connection must finish its TLS handshake and send its
    /// first bytes within `limits.handshakeTimeout`, and at most `limits.maxPending` may be
    /// that far at once (a new one closes the oldest). Keepalive pings find dead peers.
    static func transportConfig(limits: ConnectionLimits, tls: Bool) -> HTTP2ServerTransport.Posix.Config {
        var config = HTTP2ServerTransport.Posix.Config.defaults
        config.connection.maxIdleTime = limits.idleTimeout
        // After the GOAWAY of an idle close, a peer that never answers is cut off (nil: never).
        config.connection.maxGraceTime = limits.handshakeTimeout
        config.connection.keepalive.time = .seconds(60)
        config.connection.keepalive.timeout = .seconds(20)
        let pending = PendingConnections(limit: limits.maxPending)
        config.channelDebuggingCallbacks.onAcceptTCPConnection = { channel in
            channel.eventLoop.makeCompletedFuture {
                let pipeline = channel.pipeline.syncOperations
                let deadline = HandshakeDeadline(pending: pending, timeout: limits.handshakeTimeout, establishOnFirstRead: true)
                if tls {
                    // After the TLS handler: the first bytes it passes on come after a verified handshake.
                    try pipeline.addHandler(deadline, position: .after(try pipeline.handler(type: NIOSSLServerHandler.self)))
                } else {
                    try pipeline.addHandler(deadline, position: .first)
                }
            }
        }
        return config
    }
}
