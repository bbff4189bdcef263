import Foundation
import SluiceCore
import SluiceProtocol
import SluiceCoordinator
import SluiceStorage
import SluiceTLS

/// What the harness saw while the suite ran: the coordinator's view (owners over time) and the
/// store's commit log as it grew, each commit stamped with when it was first seen.
public struct Observations: Sendable, Codable {
    public struct OwnerSample: Sendable, Codable {
        /// Seconds since the start.
        public var t: Double
        /// worker id → partitions it holds.
        public var held: [String: [Int]]
        public var finished: [Int]
    }

    public struct CommitSeen: Sendable, Codable {
        public var t: Double
        public var partition: Int
        public var seq: Int64
        public var epoch: Int64
        public var toOffset: Int64
    }

    /// Not a partition's progress (`PartitionProgress`): the cluster's committed total over time.
    public struct CommittedSample: Sendable, Codable {
        public var t: Double
        /// Sum over partitions of the last committed offset.
        public var committed: Int64
    }

    public var owners: [OwnerSample] = []
    public var commits: [CommitSeen] = []
    public var progress: [CommittedSample] = []
}

/// Polls the coordinator's status and the store's commit log, each in a loop of its own, until
/// stopped. Polling the commit log every 250 ms gives commit times to within that.
public actor ClusterObserver {
    private let start: ContinuousClock.Instant
    private let commitLog: CommitLogSource
    private let tls: TLSFiles?
    /// The coordinators that run, by name, with their ports (one, or a leader and standbys).
    private var coordinators: [String: Int] = [:]
    /// The coordinator that last answered a status call: only the leader answers.
    public private(set) var leader: String?
    private var data = Observations()
    private var seen: Set<String> = []
    public private(set) var lastStatus: Sluice_V1_StatusResponse?
    public private(set) var lastStatusAt: Double = -1
    private var lastCommitted: [Int: Int64] = [:]

    public init(start: ContinuousClock.Instant, commitLog: CommitLogSource, tls: TLSFiles?) {
        self.start = start
        self.commitLog = commitLog
        self.tls = tls
    }

    var now: Double { (ContinuousClock.now - start).seconds }

    public func setCoordinators(_ ports: [String: Int]) { coordinators = ports }

    public var observations: Observations { data }

    /// Sum of the last committed offsets (events committed).
    public var committed: Int64 { lastCommitted.values.reduce(0, +) }

    public func committedOffsets() -> [Int: Int64] { lastCommitted }

    /// The partitions the coordinator last reported finished (their owners committed the end of
    /// the input with its last windows, and a Kafka sink has published them).
    public func finishedPartitions() -> Set<Int> {
        Set(lastStatus?.partitions.filter { $0.state == "finished" }.map { Int($0.partition) } ?? [])
    }

    /// One status poll; nil while the coordinator is down or slow.
    public func pollStatus() async {
        // The last leader first; a standby refuses the call until it leads.
        let order = coordinators.keys.sorted { ($0 == leader ? 0 : 1, $0) < ($1 == leader ? 0 : 1, $1) }
        var answer: (String, Sluice_V1_StatusResponse)?
        for name in order {
            guard let port = coordinators[name] else { continue }
            if let status = try? await fetchStatus(host: "127.0.0.1", port: port, tls: tls, timeout: .seconds(2)) {
                answer = (name, status)
                break
            }
        }
        guard let (name, status) = answer else { return }
        leader = name
        let t = now
        lastStatus = status
        lastStatusAt = t
        var held: [String: [Int]] = [:]
        for w in status.workers { held[w.workerID] = [] }
        for p in status.partitions where !p.owner.isEmpty { held[p.owner, default: []].append(Int(p.partition)) }
        data.owners.append(.init(t: t, held: held.mapValues { $0.sorted() },
                                 finished: status.partitions.filter { $0.state == "finished" }.map { Int($0.partition) }))
    }

    /// One read of the commit log (read-only use of the store's database).
    public func pollCommits() async {
        guard let log = await commitLog.read() else { return }
        let t = now
        for c in log {
            let key = "\(c.partition)/\(c.seq)/\(c.epoch)"
            guard seen.insert(key).inserted else { continue }
            data.commits.append(.init(t: t, partition: c.partition, seq: c.seq, epoch: c.epoch, toOffset: c.toOffset))
            lastCommitted[c.partition] = max(lastCommitted[c.partition] ?? 0, c.toOffset)
        }
        data.progress.append(.init(t: t, committed: committed))
    }

    /// Polls until `stop()` or `limit`: commits every 250 ms, status every second.
    public func run(limit: Duration) async {
        let rounds = Int(limit.components.seconds * 4) + 4
        for round in 0..<rounds where !Task.isCancelled {
            await pollCommits()
            if round % 4 == 0 { await pollStatus() }
            try? await Task.sleep(for: .milliseconds(250))
        }
    }
}
