import Foundation
import SluiceJob

/// A game-day suite: the cluster to start, the workload to drive, the store, the bounds, and the
/// faults to inject (fixed in time, drawn from a seed, or both). Parsed by `SuiteParser`.
public struct Suite: Sendable, Equatable {
    public var name: String
    public var store: Store
    public var topology: Topology
    public var workload: Workload
    /// A job spec file (relative to the suite file), or nil for the default tumbling job.
    public var job: String?
    public var bounds: Bounds
    /// Faults at fixed times.
    public var faults: [FaultSpec]
    /// A seeded nemesis that draws faults at random (same seed, same schedule).
    public var random: RandomNemesis?
    /// Where the workers read the workload: the generator, or a Kafka topic the harness fills.
    public var source: Source = .generator
    /// Where results go: the store's sink (SQLite or PostgreSQL), or a Kafka topic, exactly once.
    public var sink: SinkKind = .store
    /// The broker the harness starts when `source` or `sink` is Kafka.
    public var kafka = Kafka()
    /// The suite file has a `kafka:` block (refused without a Kafka source or sink).
    var kafkaGiven = false

    public init(name: String, store: Store = .sqlite, topology: Topology = Topology(), workload: Workload = Workload(),
                job: String? = nil, bounds: Bounds = Bounds(), faults: [FaultSpec] = [], random: RandomNemesis? = nil) {
        self.name = name
        self.store = store
        self.topology = topology
        self.workload = workload
        self.job = job
        self.bounds = bounds
        self.faults = faults
        self.random = random
    }

    /// Where checkpoints, output and the coordinator's state live.
    public enum Store: Sendable, Equatable {
        /// The embedded default: one SQLite database shared by the workers (sink and checkpoint store).
        case sqlite
        /// A PostgreSQL server: a throwaway one the harness starts (nil), or the server at `url`, where
        /// the harness creates a fresh database. Holds the coordinator's leases, every worker's
        /// checkpoints and the sink.
        case postgres(url: String?)

        public var name: String {
            switch self {
            case .sqlite: "sqlite"
            case .postgres: "postgres"
            }
        }
    }

    public enum Source: String, Sendable, Equatable {
        /// `gen:…`, throttled by the workers (the same lines as the kept `input/` files).
        case generator
        /// A topic of `sluice dev kafka` holding the same lines, partition by partition, read with `?stop=latest`.
        case kafka
    }

    public enum SinkKind: String, Sendable, Equatable {
        /// The store's own sink: SQLite (`results.db`) or the PostgreSQL database.
        case store
        /// A topic of `sluice dev kafka` through the exactly-once Kafka sink; checkpoints in the store.
        case kafka
    }

    /// The harness's broker: `sluice dev kafka --brokers N` (librdkafka's mock cluster).
    public struct Kafka: Sendable, Equatable {
        public var brokers = 3
        public init(brokers: Int = 3) { self.brokers = brokers }
    }

    /// True when the suite needs a broker.
    public var usesKafka: Bool { source == .kafka || sink == .kafka }

    public struct Topology: Sendable, Equatable {
        public var workers = 3
        public var partitions = 8
        public var leaseTTLMs: Int64 = 6_000
        public var heartbeatMs: Int64 = 1_000
        /// PostgreSQL: how long a worker retries its checkpoint store before it fails the partition
        /// (`sluice worker --store-retry-ms`); nil: the worker's default (120 s).
        public var storeRetryMs: Int64?
        /// Coordinators sharing the store: 1, or a leader and standbys (`kill_coordinator` then kills
        /// the leader the harness last saw, and a standby takes the leadership over: a failover).
        public var coordinators = 1
        public init(workers: Int = 3, partitions: Int = 8, leaseTTLMs: Int64 = 6_000, heartbeatMs: Int64 = 1_000, storeRetryMs: Int64? = nil) {
            (self.workers, self.partitions, self.leaseTTLMs, self.heartbeatMs) = (workers, partitions, leaseTTLMs, heartbeatMs)
            self.storeRetryMs = storeRetryMs
        }
    }

    public struct Workload: Sendable, Equatable {
        public var seed: UInt64 = 42
        public var events = 400_000
        public var keys = 10_000
        /// The generator is throttled so that the input lasts about this long.
        public var seconds = 60.0
        public init(seed: UInt64 = 42, events: Int = 400_000, keys: Int = 10_000, seconds: Double = 60) {
            (self.seed, self.events, self.keys, self.seconds) = (seed, events, keys, seconds)
        }
    }

    public struct Bounds: Sendable, Equatable {
        /// Every fault's recovery time must stay under this.
        public var recoverySeconds = 20.0
        /// The whole run (cluster start to every partition finished) must end within this.
        public var runSeconds = 170.0
        public init(recoverySeconds: Double = 20, runSeconds: Double = 170) {
            (self.recoverySeconds, self.runSeconds) = (recoverySeconds, runSeconds)
        }
    }

    public struct RandomNemesis: Sendable, Equatable {
        public var seed: UInt64 = 1
        /// The first fault no earlier than this (s after the start).
        public var start = 8.0
        /// No fault starts after this.
        public var until = 60.0
        /// Pause between one fault's end and the next one's start, drawn uniformly (s).
        public var gap: ClosedRange<Double> = 3...8
        /// How long a lasting fault lasts, drawn uniformly (s).
        public var duration: ClosedRange<Double> = 3...10
        public var kinds: [FaultKind] = FaultKind.availableOnSQLite
        /// Scale-in never goes below this many workers; scale-out never above `maxWorkers`.
        public var minWorkers = 2
        public var maxWorkers = 5
        /// Up to this many drawn faults act at once, each on a different worker or link (the
        /// coordinator, the store and the broker's outage slot count as one each). 1: one at a time.
        public var concurrency = 1
        public init() {}
    }
}

public enum FaultKind: String, Sendable, Equatable, CaseIterable, Codable {
    case killWorker = "kill_worker"
    case killCoordinator = "kill_coordinator"
    case pauseWorker = "pause_worker"
    /// Through the fault proxy between the worker and the coordinator.
    case cutWorker = "cut_worker"
    case addWorker = "add_worker"
    /// SIGTERM: a graceful leave.
    case removeWorker = "remove_worker"
    case fillDisk = "fill_disk"
    /// PostgreSQL only: `pg_ctl stop -m immediate`, then started again (the harness's own server).
    case restartStore = "restart_store"
    /// PostgreSQL only: through the fault proxy between the worker and the database.
    case cutWorkerFromStore = "cut_worker_from_store"
    /// Kafka only: every partition leader and coordinator moved off a broker, then the broker down (for `for`).
    case kafkaBrokerDown = "kafka_broker_down"
    /// Kafka only: one partition's leader moved to another broker.
    case kafkaLeaderChange = "kafka_leader_change"
    /// Kafka only: the next requests of one API fail with a retriable error code.
    case kafkaRequestErrors = "kafka_request_errors"

    public static let availableOnSQLite: [FaultKind] = [.killWorker, .killCoordinator, .pauseWorker, .cutWorker,
                                                         .addWorker, .removeWorker, .fillDisk]
    public static let availableOnPostgres: [FaultKind] = [.killWorker, .killCoordinator, .pauseWorker, .cutWorker,
                                                           .addWorker, .removeWorker, .restartStore, .cutWorkerFromStore]
    public var needsPostgres: Bool { self == .restartStore || self == .cutWorkerFromStore }
    public var needsKafka: Bool { [.kafkaBrokerDown, .kafkaLeaderChange, .kafkaRequestErrors].contains(self) }
    public var needsTarget: Bool { ![.killCoordinator, .addWorker, .restartStore].contains(self) && !needsKafka }
    /// A fault that lasts (`for:`), as opposed to one that happens at an instant.
    public var lasts: Bool { [.pauseWorker, .cutWorker, .fillDisk, .cutWorkerFromStore, .kafkaBrokerDown].contains(self) }
}

/// What a network fault does to the bytes through the proxy.
public enum NetworkMode: Sendable, Equatable {
    /// Nothing gets through (held back, as by a dropped link whose TCP retransmits later).
    case blackhole
    /// Each chunk waits `ms` plus a uniform jitter of ± `jitterMs`.
    case delay(ms: Int, jitterMs: Int)
    /// Every connection is reset (RST) at once, and so is every new one while the fault lasts.
    case reset
    /// At most this many bytes per second.
    case bandwidth(bytesPerSecond: Int)

    public var name: String {
        switch self {
        case .blackhole: "blackhole"
        case .delay: "delay"
        case .reset: "reset"
        case .bandwidth: "bandwidth"
        }
    }
}

/// Which way a network fault applies.
public enum Direction: String, Sendable, Equatable, CaseIterable {
    case both
    /// Worker to coordinator (or to the database) only.
    case upstream
    /// Coordinator (or database) to worker only.
    case downstream
}

public struct FaultSpec: Sendable, Equatable {
    public var at: Double
    public var kind: FaultKind
    /// `worker-N`, or nil when the kind has none.
    public var target: String?
    /// How long a lasting fault lasts (s).
    public var duration: Double?
    /// Kills: restart the process this long after (s); nil leaves it dead (workers only).
    public var restartAfter: Double?
    public var network: NetworkMode?
    public var direction: Direction = .both
    /// fill_disk: the file size limit while the disk is "full" (bytes).
    public var fileSizeLimit: Int = 0
    /// kafka_broker_down: the broker taken down; kafka_leader_change: the new leader (ids 1…N).
    public var broker: Int?
    /// kafka_leader_change: the topic (the input or the result topic) and its partition.
    public var topic: KafkaTopicRole = .input
    public var partition: Int?
    /// kafka_request_errors: which requests fail, how many, and with what.
    public var api: KafkaAPI?
    public var count: Int?
    public var errorCode: KafkaRetriableError = .requestTimedOut

    public init(at: Double, kind: FaultKind, target: String? = nil, duration: Double? = nil, restartAfter: Double? = nil,
                network: NetworkMode? = nil, direction: Direction = .both, fileSizeLimit: Int = 0) {
        self.at = at
        self.kind = kind
        self.target = target
        self.duration = duration
        self.restartAfter = restartAfter
        self.network = network
        self.direction = direction
        self.fileSizeLimit = fileSizeLimit
    }

    /// When the fault stops acting: the end of a lasting fault, the restart of a kill, else `at`.
    public var healsAt: Double { at + (duration ?? restartAfter ?? 0) }

    /// One line for the progress, the report and the timeline.
    public var summary: String {
        var parts = [kind.rawValue]
        if let target { parts.append(target) }
        if let network {
            switch network {
            case .blackhole, .reset: parts.append(network.name)
            case let .delay(ms, jitter): parts.append("delay \(ms)±\(jitter) ms")
            case let .bandwidth(bps): parts.append("bandwidth \(bps) B/s")
            }
            if direction != .both { parts.append(direction.rawValue) }
        }
        switch kind {
        case .kafkaBrokerDown: parts.append("broker \(broker ?? 0)")
        case .kafkaLeaderChange: parts.append("\(topic.rawValue)[\(partition ?? 0)] to broker \(broker ?? 0)")
        case .kafkaRequestErrors: parts.append("\(count ?? 0) \(api?.rawValue ?? "?") requests fail with \(errorCode.rawValue)")
        default: break
        }
        if let duration { parts.append("for \(format(duration)) s") }
        if let restartAfter { parts.append("restart after \(format(restartAfter)) s") }
        return parts.joined(separator: " ")
    }
}

/// The topics of a Kafka suite, by their role.
public enum KafkaTopicRole: String, Sendable, Equatable, CaseIterable {
    /// The workload's topic (`source: kafka`).
    case input
    /// The result topic (`sink: kafka`).
    case output
    /// The exactly-once sink's progress topic (`sink: kafka`, one partition).
    case progress
}

/// The Kafka APIs whose requests `kafka_request_errors` can fail, by name, with their API keys.
public enum KafkaAPI: String, Sendable, Equatable, CaseIterable {
    case produce, fetch, listOffsets = "list_offsets", metadata, offsetCommit = "offset_commit", findCoordinator = "find_coordinator",
         initProducerId = "init_producer_id", addPartitionsToTxn = "add_partitions_to_txn", endTxn = "end_txn"

    public var key: Int16 {
        switch self {
        case .produce: 0
        case .fetch: 1
        case .listOffsets: 2
        case .metadata: 3
        case .offsetCommit: 8
        case .findCoordinator: 10
        case .initProducerId: 22
        case .addPartitionsToTxn: 24
        case .endTxn: 26
        }
    }
}

/// Error codes a Kafka client retries by itself: what a busy or moving cluster answers. (A fatal
/// code would test the connector's failure path, not the cluster's recovery.)
public enum KafkaRetriableError: String, Sendable, Equatable, CaseIterable {
    case leaderNotAvailable = "LEADER_NOT_AVAILABLE", notLeaderOrFollower = "NOT_LEADER_OR_FOLLOWER",
         requestTimedOut = "REQUEST_TIMED_OUT", networkException = "NETWORK_EXCEPTION",
         coordinatorLoadInProgress = "COORDINATOR_LOAD_IN_PROGRESS", coordinatorNotAvailable = "COORDINATOR_NOT_AVAILABLE",
         notCoordinator = "NOT_COORDINATOR", notEnoughReplicas = "NOT_ENOUGH_REPLICAS", concurrentTransactions = "CONCURRENT_TRANSACTIONS"

    public var code: Int32 {
        switch self {
        case .leaderNotAvailable: 5
        case .notLeaderOrFollower: 6
        case .requestTimedOut: 7
        case .networkException: 13
        case .coordinatorLoadInProgress: 14
        case .coordinatorNotAvailable: 15
        case .notCoordinator: 16
        case .notEnoughReplicas: 19
        case .concurrentTransactions: 51
        }
    }
}

/// Seconds as the suite's messages print them (the YAML reader's rule).
func format(_ seconds: Double) -> String { YAMLReader.format(seconds) }
