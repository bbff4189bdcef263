import SluiceCore
import SluiceWorkload

/// The worker's lease and partition logic as a pure state machine: no I/O, no clock (the time is
/// passed in), jitter from a seeded generator. `WorkerDaemon` is the I/O shell around it: it feeds
/// in what happened (a session opened, a grant, a renewal, a host event, a timer, a lost
/// connection, a shutdown request) and performs the actions that come out (start, revoke or drop a
/// partition, send a message, arm a timer, dial a coordinator, close the session, stop). The
/// deterministic simulator drives exactly this type.
///
/// What it keeps:
/// - `held`: the partitions whose tasks will still report (released, fenced or failed);
/// - `unanswered`: the leases each heartbeat reported, oldest first, matched one by one with the
///   renewals: whatever a heartbeat reported and its renewal leaves out is no longer ours (dropped);
/// - `pending`: reports (released, fenced, failed) made while no session was open, sent on the next;
/// - the reconnection state: consecutive failures (for `Backoff`) and the next coordinator to dial.
///
/// Shutdown: every held partition is released (last checkpoint), the releases are sent, then the
/// session is closed from this side (the coordinator sees a graceful leave), then `stop`. A grace
/// timer bounds it: when it fires, `stop` comes at once.
public struct WorkerCore: Sendable {
    public struct Lease: Hashable, Sendable, CustomStringConvertible {
        public var partition: Int
        public var epoch: Int64
        public init(partition: Int, epoch: Int64) {
            self.partition = partition
            self.epoch = epoch
        }
        public var description: String { "\(partition)/\(epoch)" }
    }

    /// What the worker tells the coordinator about a partition it stopped.
    public enum Report: Equatable, Sendable {
        case released(Lease, committedOffset: Int64)
        case fenced(Lease)
        case failed(Lease, reason: String)
    }

    public enum Timer: Hashable, Sendable {
        /// The next heartbeat is due.
        case heartbeat
        /// The backoff after a lost connection has passed: dial again.
        case reconnect
        /// The shutdown's grace time has passed: stop, released or not.
        case grace
    }

    public enum Input: Equatable, Sendable {
        /// The daemon starts.
        case start
        /// A coordinator answered the join and the session is open (hello sent).
        case joined(heartbeatIntervalMs: Int64)
        case grant(Lease)
        case revoke(Lease)
        /// The answer to the oldest unanswered heartbeat: the leases it renewed.
        case renewal([Lease])
        /// The heartbeat timer fired; `reported` is what the host runs now.
        case heartbeatDue(reported: [Lease])
        /// A partition task stopped or finished.
        case host(PartitionHost.Event)
        /// The session ended (the coordinator closed it, or the connection broke or never opened).
        case disconnected(reason: String)
        case reconnectDue
        case shutdownRequested
        case graceExpired
    }

    public enum Action: Equatable, Sendable {
        /// Dial coordinator number `coordinator` (an index into the addresses), join, open a session.
        case connect(coordinator: Int)
        case startPartition(Lease)
        /// Checkpoint and stop; the host then reports `.released`.
        case revokePartition(Lease)
        /// Stop at once, without a commit (the coordinator no longer renews it).
        case dropPartition(Lease)
        /// Checkpoint and stop every partition (shutdown); each reports.
        case releaseAll
        case send(Report)
        /// Send a heartbeat for these leases (with their progress).
        case sendHeartbeat([Lease])
        /// Arm the timer to fire at `atMs` (replacing an armed one of the same kind).
        case setTimer(Timer, atMs: Int64)
        /// Finish the session's outbox: the stream is half-closed, a graceful leave.
        case closeSession
        /// The daemon is done.
        case stop
    }

    public struct Settings: Sendable, Equatable {
        /// How many coordinator addresses there are (each failure moves on to the next).
        public var coordinators: Int
        /// Between failed connections.
        public var backoff: Backoff
        /// How long a graceful shutdown may take before the daemon stops anyway.
        public var graceMs: Int64

        public init(coordinators: Int, backoff: Backoff = Backoff(baseMs: 100, capMs: 2_000), graceMs: Int64 = 10_000) {
            self.coordinators = max(1, coordinators)
            self.backoff = backoff
            self.graceMs = graceMs
        }
    }

    public enum Phase: Equatable, Sendable {
        case idle, connecting, connected, waitingToReconnect, stopped
    }

    public let settings: Settings
    public private(set) var phase = Phase.idle
    /// Shutdown was requested.
    public private(set) var stopping = false
    /// The session's outbox was finished (during shutdown).
    public private(set) var closing = false
    public private(set) var held: [Int: Int64] = [:]
    public private(set) var unanswered: [[Lease]] = []
    public private(set) var pending: [Report] = []
    /// Connection failures since the last successful join.
    public private(set) var failures = 0
    public private(set) var heartbeatIntervalMs: Int64 = 2_000
    private var nextCoordinator = 0
    private var random: SplitMix64
    /// Deliberate bugs for the simulator's tests; consulted only in debug builds (`PlantedBug`).
    public var plantedBugs: Set<PlantedBug> = []

    public init(settings: Settings, seed: UInt64) {
        self.settings = settings
        random = SplitMix64(seed: seed)
    }

    public var heldLeases: [Lease] {
        held.map { Lease(partition: $0.key, epoch: $0.value) }.sorted { $0.partition < $1.partition }
    }

    public mutating func handle(_ input: Input, nowMs: Int64) -> [Action] {
        guard phase != .stopped else { return [] }
        switch input {
        case .start:
            guard phase == .idle else { return [] }
            return [dial()]

        case .joined(let interval):
            phase = .connected
            failures = 0
            unanswered = []
            heartbeatIntervalMs = max(50, interval)
            var actions = pending.map(Action.send)
            pending = []
            if stopping {
                actions += finishShutdownIfReleased()
            } else {
                actions.append(.setTimer(.heartbeat, atMs: nowMs))
            }
            return actions

        case .grant(let lease):
            if stopping {
                // Not started during shutdown: tell the coordinator at once, so it moves on.
                return closing ? [] : deliver(.released(lease, committedOffset: 0))
            }
            if let current = held[lease.partition], current >= lease.epoch { return [] }
            held[lease.partition] = lease.epoch
            return [.startPartition(lease)]

        case .revoke(let lease):
            return [.revokePartition(lease)]

        case .renewal(let renewed):
            guard !unanswered.isEmpty else { return [] }
            let reported = unanswered.removeFirst()
            let kept = Set(renewed)
            var actions: [Action] = []
            for lease in reported where !kept.contains(lease) && !plantedBugs.armed(.workerRenewsLapsedLease) {
                if held[lease.partition] == lease.epoch { held[lease.partition] = nil }
                actions.append(.dropPartition(lease))
            }
            if stopping { actions += finishShutdownIfReleased() }
            return actions

        case .heartbeatDue(let reported):
            guard phase == .connected, !closing else { return [] }
            unanswered.append(reported)
            return [.sendHeartbeat(reported), .setTimer(.heartbeat, atMs: nowMs + heartbeatIntervalMs)]

        case .host(let event):
            let report: Report
            switch event {
            case let .released(partition, epoch, committed):
                report = .released(Lease(partition: partition, epoch: epoch), committedOffset: committed)
            case let .fenced(partition, epoch):
                report = .fenced(Lease(partition: partition, epoch: epoch))
            case let .failed(partition, epoch, reason):
                // Not a fencing: the coordinator backs off and places the partition elsewhere.
                report = .failed(Lease(partition: partition, epoch: epoch), reason: String(reason.prefix(500)))
            case .finished:
                return []  // reported in heartbeats
            }
            let lease = report.lease
            if held[lease.partition] == lease.epoch { held[lease.partition] = nil }
            var actions = deliver(report)
            if stopping { actions += finishShutdownIfReleased() }
            return actions

        case .disconnected:
            let wasClosing = closing
            phase = .waitingToReconnect
            closing = false
            unanswered = []
            if stopping {
                // Either the graceful leave is complete, or there is no session to deliver to:
                // what is still held reports into `pending`, and its lease lapses.
                if wasClosing || held.isEmpty { return stop() }
                return []
            }
            failures += 1
            let delay = settings.backoff.delay(failures: failures, using: &random)
            return [.setTimer(.reconnect, atMs: nowMs + delay)]

        case .reconnectDue:
            guard phase == .waitingToReconnect, !stopping else { return [] }
            return [dial()]

        case .shutdownRequested:
            guard !stopping else { return [] }
            stopping = true
            var actions: [Action] = [.setTimer(.grace, atMs: nowMs + settings.graceMs)]
            if !held.isEmpty { actions.append(.releaseAll) }
            actions += finishShutdownIfReleased()
            return actions

        case .graceExpired:
            guard stopping else { return [] }
            return stop()
        }
    }

    private mutating func dial() -> Action {
        phase = .connecting
        let index = nextCoordinator % settings.coordinators
        nextCoordinator += 1
        return .connect(coordinator: index)
    }

    /// Sends now, or keeps the report for the next session.
    private mutating func deliver(_ report: Report) -> [Action] {
        if phase == .connected && !closing { return [.send(report)] }
        pending.append(report)
        return []
    }

    /// During shutdown, once nothing is held: close the session (a graceful leave), or stop when
    /// there is none. While a dial is under way its outcome decides.
    private mutating func finishShutdownIfReleased() -> [Action] {
        guard stopping, held.isEmpty, !closing else { return [] }
        switch phase {
        case .connected:
            closing = true
            return [.closeSession]
        case .idle, .waitingToReconnect:
            return stop()
        case .connecting, .stopped:
            return []
        }
    }

    private mutating func stop() -> [Action] {
        phase = .stopped
        return [.stop]
    }
}

extension WorkerCore.Report {
    public var lease: WorkerCore.Lease {
        switch self {
        case .released(let lease, _), .fenced(let lease), .failed(let lease, _): return lease
        }
    }
}
