import SluiceConnectors
import SluiceCoordinator
import SluiceCore
import SluiceRuntime
import SluiceWorkload

/// One schedule's shape. The defaults are the CI run's: 3 workers, 2 coordinators, 4 partitions of
/// 40 offsets, faults during the first 20 simulated seconds, 60 more to finish.
public struct SimConfig: Sendable, Equatable {
    public var partitions = 4
    public var workers = 3
    /// Input offsets per partition: the job commits [0, offsets) of each.
    public var offsets: Int64 = 40
    /// The most offsets one commit covers.
    public var maxChunk: Int64 = 8
    public var leaseTTL: Int64 = 3_000
    public var heartbeatMs: Int64 = 500
    public var tickMs: Int64 = 200
    /// Faults start only before this simulated time; every episode ends by then.
    public var faultWindowMs: Int64 = 20_000
    /// Once faults stop, every partition must be owned and finished within this.
    public var livenessBoundMs: Int64 = 60_000
    /// The most fault episodes of a schedule (crashes, pauses, cuts, failovers, outages, jumps).
    public var maxEpisodes = 10
    /// A store operation retried this many times before the partition is reported failed.
    public var storeRetries = 3
    public var storeTimeoutMs: Int64 = 1_000
    public var plantedBugs: Set<PlantedBug> = []
    /// Every schedule commits its output to Kafka through the real `KafkaExactlyOnce` on the
    /// modelled transaction coordinator (`KafkaModel`), with the sink's faults.
    public var kafkaSink = false
    /// Without `kafkaSink`, the seeds divisible by this run the Kafka sink too (0: none; by default every 10th seed).
    public var kafkaSinkEvery: UInt64 = 10
    /// Partitions of the modelled topic (output keys and progress records share them).
    public var kafkaPartitions = 2
    /// Every schedule reads a modelled CDC source (a replication slot per partition, confirmed
    /// after each commit) and corrupts newest checkpoints, so that restarts fall back one.
    public var cdcSource = false
    /// Without `cdcSource`, the seeds equal to 5 modulo this run it too (0: none), unless they run the Kafka sink.
    public var cdcSourceEvery: UInt64 = 10
    /// Keep a readable trace of every step.
    public var trace = false

    public init() {}

    /// Whether the schedule of `seed` runs the Kafka sink.
    public func kafkaSink(seed: UInt64) -> Bool { kafkaSink || (kafkaSinkEvery > 0 && seed % kafkaSinkEvery == 0) }

    /// Whether the schedule of `seed` runs the CDC source's model (never with the Kafka sink: a
    /// checkpoint rolled back after its publication is outside the sink's model).
    public func cdcSource(seed: UInt64) -> Bool {
        !kafkaSink(seed: seed) && (cdcSource || (cdcSourceEvery > 0 && seed % cdcSourceEvery == 5 % cdcSourceEvery))
    }
}

/// A broken invariant: its name, when, and what was seen.
public struct Violation: Sendable, Equatable, CustomStringConvertible {
    public var invariant: String
    public var atMs: Int64
    public var detail: String
    public var description: String { "[\(invariant)] at t=\(atMs) ms: \(detail)" }
}

/// The named invariants, checked after every step (liveness and output at the end).
public enum Invariant {
    /// No commit is accepted from an epoch below the partition's claimed epoch.
    public static let epochNotBelowClaimed = "epoch-not-below-claimed"
    /// Per partition the accepted commits form a gap-free chain (seq 1, 2, …; each range starts
    /// where the last ended), so every input offset is committed exactly once.
    public static let chainGapFree = "chain-gap-free"
    /// The commits accepted for one (partition, epoch) all come from one owner (one incarnation of one worker).
    public static let oneOwnerPerEpoch = "one-owner-per-epoch"
    /// A partition's lease passes to a new epoch only after the old owner released it, was fenced,
    /// failed it, or let it lapse: the durable ledger shows the partition without owner in between.
    public static let revokedReleasedOrFenced = "revoked-released-or-fenced"
    /// The leader's in-memory leases (owner, epoch) are exactly its durable ledger's.
    public static let coordinatorMatchesLedger = "coordinator-matches-ledger"
    /// A lease that a heartbeat reported and its renewal left out is not running on the worker any more.
    public static let unrenewedLeaseStopped = "unrenewed-lease-stopped"
    /// Once faults stop, every partition is owned and finished within the bound.
    public static let liveness = "liveness"
    /// The committed offsets of each partition are exactly its input offsets, each once.
    public static let outputEqualsInput = "output-equals-input"

    /// With the Kafka sink: the read_committed view of the modelled topic holds, per partition, the
    /// output of store-committed checkpoints only, each in exactly one committed transaction, in
    /// seq order (a prefix of the oracle).
    public static let kafkaReadCommittedExactlyOnce = "kafka-read-committed-exactly-once"
    /// With the Kafka sink: no producer commits after a newer producer of its transactional id
    /// called `initTransactions`.
    public static let kafkaFencedNeverCommits = "kafka-fenced-producer-never-commits"
    /// With the Kafka sink, once faults stop, within the bound: every committed checkpoint is
    /// published and no transaction is left open.
    public static let kafkaLiveness = "kafka-liveness"
    /// With the Kafka sink, at the end: the read_committed view equals the output of every
    /// checkpoint of the store's chain, once each, in order.
    public static let kafkaOutputEqualsOracle = "kafka-output-equals-oracle"
    /// With the CDC source: a partition resumes at or after nothing its slot has forgotten (the
    /// source confirms one checkpoint behind the newest, and the store falls back one at most).
    public static let cdcReplayAvailable = "cdc-replay-available"

    public static let all = [epochNotBelowClaimed, chainGapFree, oneOwnerPerEpoch, revokedReleasedOrFenced,
                             coordinatorMatchesLedger, unrenewedLeaseStopped, liveness, outputEqualsInput,
                             kafkaReadCommittedExactlyOnce, kafkaFencedNeverCommits, kafkaLiveness, kafkaOutputEqualsOracle,
                             cdcReplayAvailable]
}

/// What one schedule did.
public struct SimResult: Sendable {
    public var seed: UInt64
    public var violations: [Violation] = []
    /// Steps taken (messages, timers, faults).
    public var steps = 0
    /// Faults injected: each dropped, duplicated, delayed or reordered message, each lost
    /// acknowledgement and each episode.
    public var faults = 0
    public var faultsByKind: [String: Int] = [:]
    public var commits = 0
    public var simulatedMs: Int64 = 0
    /// Whether this schedule ran the Kafka sink; its transactions committed and aborted.
    public var kafkaSink = false
    public var kafkaCommits = 0
    public var kafkaAborts = 0
    /// Whether this schedule ran the CDC source's model; restarts that fell back past a corrupt checkpoint.
    public var cdcSource = false
    public var cdcFallbacks = 0
    public var trace: [String] = []
    public var passed: Bool { violations.isEmpty }
}

/// The durable lease ledger both coordinators share (as the real ones share their SQLite file or
/// PostgreSQL table). It records every save and checks `revoked-released-or-fenced` on each.
final class SimLedger: LeaseLedger {
    var records: [Int: (epoch: Int64, owner: String?)] = [:]
    var violations: [String] = []

    func load() throws -> [(partition: Int, epoch: Int64, owner: String?)] {
        records.keys.sorted().compactMap { p in records[p].map { (p, $0.epoch, $0.owner) } }
    }

    func save(partition: Int, epoch: Int64, owner: String?) throws {
        if let old = records[partition], let oldOwner = old.owner, let newOwner = owner, epoch > old.epoch {
            violations.append("partition \(partition): granted to \(newOwner) with epoch \(epoch) while \(oldOwner) still held epoch \(old.epoch) (no release, fencing or lapse in between)")
        }
        records[partition] = (epoch, owner)
    }
}

/// Drives the production `CoordinatorCore` (two coordinators, one leading) and `WorkerCore` (one
/// per worker, with a simulated partition host) over a simulated network and checkpoint store.
/// Every message, timer and fault is an event in one queue ordered by (time, sequence); every
/// random choice comes from one SplitMix64 seeded by the schedule's seed.
public final class Simulator {
    // MARK: events

    enum StoreOp {
        case claim(partition: Int, epoch: Int64)
        case commit(SimCheckpointStore.Commit)
    }

    enum StoreReply {
        case claimed(Bool, SimCheckpointStore.Last)
        case committed(SimCheckpointStore.CommitOutcome)
        case error(String)
    }

    enum Message {
        // worker → coordinator (on a session)
        case connect(w: Int, session: Int, coordinator: Int)
        case heartbeat(w: Int, session: Int, coordinator: Int, progress: [PartitionProgress])
        case report(w: Int, session: Int, coordinator: Int, report: WorkerCore.Report)
        case close(w: Int, session: Int, coordinator: Int)
        // coordinator → worker
        case joined(w: Int, session: Int)
        case refused(w: Int, session: Int)
        case grant(w: Int, session: Int, lease: WorkerCore.Lease)
        case revoke(w: Int, session: Int, lease: WorkerCore.Lease)
        case renewal(w: Int, session: Int, leases: [WorkerCore.Lease])
        // worker ↔ store
        case storeRequest(w: Int, incarnation: Int, request: Int, op: StoreOp)
        case storeReply(w: Int, incarnation: Int, request: Int, reply: StoreReply)
    }

    enum Episode {
        case cutCoordinator(w: Int, up: Bool, down: Bool)
        case cutStore(w: Int, up: Bool, down: Bool)
        case crashWorker(w: Int)
        case pauseWorker(w: Int)
        case failover
        case storeErrors
        case slowStore
        case clockJumpWorker(w: Int, deltaMs: Int64)
        case clockJumpCoordinator(deltaMs: Int64)
        /// The Kafka broker answers no producer request.
        case kafkaOutage
        /// The partition's newest checkpoint is damaged and its owner crashes: the next claim
        /// falls back to the checkpoint before it (CDC schedules).
        case corruptCheckpoint(partition: Int)
    }

    enum Event {
        case deliver(Message)
        case workerTimer(w: Int, incarnation: Int, timer: WorkerCore.Timer, generation: Int)
        case taskStep(w: Int, incarnation: Int, partition: Int, token: Int)
        case storeTimeout(w: Int, incarnation: Int, request: Int)
        case connectTimeout(w: Int, session: Int)
        case sessionBroken(w: Int, session: Int)
        case coordinatorTick(c: Int, incarnation: Int)
        case takeover(c: Int)
        case coordinatorRestart(c: Int)
        case episode(Episode, durationMs: Int64)
        case heal(Episode)
        case workerRestart(w: Int)
        case workerResume(w: Int)
    }

    struct Scheduled {
        var time: Int64
        var seq: Int
        var event: Event
        func before(_ o: Scheduled) -> Bool { time != o.time ? time < o.time : seq < o.seq }
    }

    // MARK: processes

    struct PartitionTask {
        enum Phase { case claiming, running }
        var lease: WorkerCore.Lease
        var token: Int
        var phase = Phase.claiming
        var committed: Int64 = 0
        var seq: Int64 = 0
        var processed: Int64 = 0
        var finished = false
        var releasing = false
        var errors = 0
        var inflight: Int?
        var inflightOp: StoreOp?
        /// With the Kafka sink: the real sink protocol over this lease's model producer.
        var sink: KafkaExactlyOnce?
        /// With the CDC source: the newest committed checkpoint's position (as `PostgresCdcSource`
        /// keeps it), confirmed to the slot when the next commit succeeds.
        var cdcNewestCommitted: Int64 = 0
    }

    final class WorkerProc {
        var core: WorkerCore
        var incarnation = 0
        var up = true
        var pausedUntil: Int64?
        var session: Int?
        var sessionOpen = false
        var sessionCoordinator = 0
        var timerGeneration: [WorkerCore.Timer: Int] = [:]
        var tasks: [Int: PartitionTask] = [:]
        var clockOffset: Int64 = 0
        init(core: WorkerCore) { self.core = core }
    }

    final class CoordinatorProc {
        var up = true
        var incarnation = 0
        var core: CoordinatorCore?
        var sessions: [Int: Int] = [:]
        var clockOffset: Int64 = 0
    }

    // MARK: state

    public let seed: UInt64
    public let config: SimConfig
    private var rng: SplitMix64
    private var queue: [Scheduled] = []
    private var nextSeq = 0
    private(set) var now: Int64 = 0
    private(set) var workers: [WorkerProc] = []
    private var coordinators: [CoordinatorProc] = [CoordinatorProc(), CoordinatorProc()]
    private var leader: Int?
    private let ledger = SimLedger()
    private(set) var store = SimCheckpointStore()
    private var nextSession = 1
    private var nextRequest = 1
    private var nextToken = 1
    /// Per directed link, the time of the last delivery (links are FIFO unless a message is reordered).
    private var lastDelivery: [String: Int64] = [:]
    private(set) var cuts: [String: Int] = [:]
    private(set) var storeOutages = 0
    private var slowStores = 0
    // Message-level fault probabilities (per mille) of this schedule, during the fault window.
    private var dropPerMille = 0, duplicatePerMille = 0, delayPerMille = 0, reorderPerMille = 0, lostAckPerMille = 0
    /// Who committed each (partition, epoch).
    private var committers: [Int: [Int64: String]] = [:]
    private(set) var result: SimResult
    /// The Kafka sink's model and checker (nil: this schedule runs without the Kafka sink).
    var kafka: KafkaSim?
    /// With the CDC source: each partition's slot's confirmed position (it only moves forward:
    /// the server forgets what lies before it), the checkpoints marked corrupt (partition → seq),
    /// and the checkpoint each partition last fell back to. One damaged checkpoint at a time: the
    /// store keeps two, and with both damaged any source loses the partition's position.
    private var cdc: (confirmed: [Int: Int64], corrupt: [Int: Int64], fellBackTo: [Int: Int64])?
    /// The run is over: a violation, the deadline, or every partition done.
    private var stopped = false
    private var deadline: Int64 = 0

    public init(seed: UInt64, config: SimConfig = SimConfig()) {
        self.seed = seed
        self.config = config
        rng = SplitMix64(seed: seed)
        result = SimResult(seed: seed)
        store.plantedBugs = config.plantedBugs
        if config.kafkaSink(seed: seed) {
            kafka = KafkaSim(partitions: config.kafkaPartitions, plantedBugs: config.plantedBugs)
            result.kafkaSink = true
        }
        if config.cdcSource(seed: seed) {
            cdc = ([:], [:], [:])
            result.cdcSource = true
        }
        for w in 0..<config.workers {
            workers.append(WorkerProc(core: Self.makeWorkerCore(seed: seed, w: w, incarnation: 0, config: config)))
        }
    }

    static func makeWorkerCore(seed: UInt64, w: Int, incarnation: Int, config: SimConfig) -> WorkerCore {
        var core = WorkerCore(settings: .init(coordinators: 2, backoff: Backoff(baseMs: 100, capMs: 2_000), graceMs: 10_000),
                              seed: seed &* 31 &+ UInt64(w) &* 1_000_003 &+ UInt64(incarnation))
        core.plantedBugs = config.plantedBugs
        return core
    }

    static func name(_ w: Int) -> String { "w\(w)" }

    // MARK: random

    func random(_ range: ClosedRange<Int64>) -> Int64 { Int64.random(in: range, using: &rng) }
    func randomInt(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &rng) }
    func chance(perMille: Int) -> Bool { perMille > 0 && Int.random(in: 0..<1_000, using: &rng) < perMille }

    // MARK: the queue (a binary heap on (time, seq))

    func schedule(_ event: Event, at time: Int64) {
        let item = Scheduled(time: max(time, now), seq: nextSeq, event: event)
        nextSeq += 1
        queue.append(item)
        var i = queue.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard queue[i].before(queue[parent]) else { break }
            queue.swapAt(i, parent)
            i = parent
        }
    }

    private func pop() -> Scheduled? {
        guard let first = queue.first else { return nil }
        let last = queue.removeLast()
        if !queue.isEmpty {
            queue[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < queue.count, queue[l].before(queue[m]) { m = l }
                if r < queue.count, queue[r].before(queue[m]) { m = r }
                if m == i { break }
                queue.swapAt(i, m)
                i = m
            }
        }
        return first
    }

    // MARK: trace and faults

    func trace(_ line: @autoclosure () -> String) {
        guard config.trace else { return }
        result.trace.append("t=\(now) " + line())
    }

    func fault(_ kind: String, _ line: @autoclosure () -> String) {
        result.faults += 1
        result.faultsByKind[kind, default: 0] += 1
        trace("FAULT " + line())
    }

    var inFaultWindow: Bool { now < config.faultWindowMs }

    func violate(_ invariant: String, _ detail: String) {
        result.violations.append(Violation(invariant: invariant, atMs: now, detail: detail))
        trace("VIOLATION [\(invariant)] \(detail)")
    }

    // MARK: running

    /// Runs the schedule to its end (all partitions finished and owned, a violation, or the bound).
    public func run() -> SimResult {
        planFaults()
        for w in 0..<config.workers {
            // Workers start a little apart.
            schedule(.workerRestart(w: w), at: random(0...300))
        }
        takeover(0)
        deadline = config.faultWindowMs + config.livenessBoundMs
        runLoop { true }
        result.simulatedMs = now
        if let kafka {
            result.kafkaCommits = kafka.model.transactions.filter { $0.state == .committed }.count
            result.kafkaAborts = kafka.model.transactions.filter { $0.state == .aborted }.count
        }
        if result.violations.isEmpty {
            finalChecks(deadline: deadline)
        }
        return result
    }

    /// Takes events in order while `keepGoing` holds and the run is not over. Re-entered (with a
    /// narrower condition) while a worker is paused inside a synchronous call of the Kafka sink.
    func runLoop(while keepGoing: () -> Bool) {
        while !stopped, keepGoing() {
            guard let item = pop() else {
                stopped = true
                return
            }
            if item.time > deadline {
                stopped = true
                return
            }
            now = item.time
            result.steps += 1
            handle(item.event)
            checkAfterStep()
            if !result.violations.isEmpty || allDone() { stopped = true }
        }
    }

    private func planFaults() {
        // Message-level faults: each kind is off in about half the schedules, up to 5% of messages otherwise.
        func intensity() -> Int { chance(perMille: 500) ? randomInt(1...50) : 0 }
        dropPerMille = intensity()
        duplicatePerMille = intensity()
        delayPerMille = intensity()
        reorderPerMille = intensity()
        lostAckPerMille = intensity() * 2
        let episodes = randomInt(0...config.maxEpisodes)
        trace("schedule: \(episodes) episodes; per mille drop \(dropPerMille), duplicate \(duplicatePerMille), delay \(delayPerMille), reorder \(reorderPerMille), lost ack \(lostAckPerMille)")
        for _ in 0..<episodes {
            let start = random(0...(config.faultWindowMs - 1))
            let duration = min(random(100...8_000), config.faultWindowMs - start)
            let w = randomInt(0...(config.workers - 1))
            let episode: Episode
            switch randomInt(0...8) {
            case 0:
                let dir = randomInt(0...2)
                episode = .cutCoordinator(w: w, up: dir != 1, down: dir != 0)
            case 1:
                let dir = randomInt(0...2)
                episode = .cutStore(w: w, up: dir != 1, down: dir != 0)
            case 2: episode = .crashWorker(w: w)
            case 3: episode = .pauseWorker(w: w)
            case 4: episode = .failover
            case 5: episode = .storeErrors
            case 6: episode = .slowStore
            case 7: episode = .clockJumpWorker(w: w, deltaMs: random(-5_000...5_000))
            default: episode = .clockJumpCoordinator(deltaMs: random(-5_000...5_000))
            }
            schedule(.episode(episode, durationMs: duration), at: start)
        }
        if kafka != nil { planKafkaFaults() }
        if cdc != nil {
            for _ in 0..<randomInt(1...4) {
                schedule(.episode(.corruptCheckpoint(partition: randomInt(0...(config.partitions - 1))), durationMs: random(100...3_000)),
                         at: random(0...(config.faultWindowMs - 1)))
            }
        }
    }

    private func allDone() -> Bool { storeDone() && kafkaDone() }

    private func storeDone() -> Bool {
        for p in 0..<config.partitions where !store.last(partition: p).finished { return false }
        guard let l = leader, let core = coordinators[l].core else { return false }
        return core.partitions.allSatisfy { $0.owner != nil }
    }

    private func finalChecks(deadline: Int64) {
        if !kafkaDone() {
            violate(Invariant.kafkaLiveness, "not done \(config.livenessBoundMs) ms after the faults stopped (t=\(deadline)): " + kafkaLag())
            if storeDone() { return }
        }
        if !allDone() {
            var missing: [String] = []
            for p in 0..<config.partitions {
                let last = store.last(partition: p)
                let owner = leader.flatMap { coordinators[$0].core?.partitions[p].owner }
                if !last.finished || owner == nil {
                    missing.append("p\(p): committed to \(last.offset)/\(config.offsets)\(last.finished ? " finished" : ""), owner \(owner ?? "none")")
                }
            }
            violate(Invariant.liveness, "not done \(config.livenessBoundMs) ms after the faults stopped (t=\(deadline)): " + missing.joined(separator: "; "))
            return
        }
        for p in 0..<config.partitions {
            let offsets = (store.commits[p] ?? []).flatMap { Array($0.from..<$0.to) }
            if offsets != Array(0..<config.offsets) {
                violate(Invariant.outputEqualsInput, "partition \(p): committed offsets are not exactly 0..<\(config.offsets) once each")
            }
        }
        kafkaFinalChecks()
    }

    private func checkAfterStep() {
        kafkaCheck()
        for v in ledger.violations { violate(Invariant.revokedReleasedOrFenced, v) }
        ledger.violations = []
        guard let l = leader, let core = coordinators[l].core else { return }
        for p in 0..<config.partitions {
            let state = core.partitions[p]
            let record = ledger.records[p] ?? (0, nil)
            if state.epoch != record.epoch || state.owner != record.owner {
                violate(Invariant.coordinatorMatchesLedger, "partition \(p): the leader holds \(state.owner ?? "none")/\(state.epoch), its ledger \(record.owner ?? "none")/\(record.epoch)")
            }
        }
    }

    // MARK: dispatch

    private func handle(_ event: Event) {
        // A paused worker's events wait until it resumes (its clock stops for it, as for a SIGSTOPped process).
        if let w = worker(of: event), let until = workers[w].pausedUntil, workers[w].up {
            schedule(event, at: until)
            return
        }
        switch event {
        case .deliver(let message): deliver(message)
        case let .workerTimer(w, inc, timer, generation):
            let proc = workers[w]
            guard proc.up, proc.incarnation == inc, proc.timerGeneration[timer] == generation else { return }
            switch timer {
            case .heartbeat:
                let reported = proc.tasks.values.map(\.lease).sorted { $0.partition < $1.partition }
                feed(w, .heartbeatDue(reported: reported))
            case .reconnect: feed(w, .reconnectDue)
            case .grace: feed(w, .graceExpired)
            }
        case let .taskStep(w, inc, partition, token):
            let proc = workers[w]
            guard proc.up, proc.incarnation == inc, let task = proc.tasks[partition], task.token == token else { return }
            for input in step(w, partition) { feed(w, input) }
        case let .storeTimeout(w, inc, request):
            let proc = workers[w]
            guard proc.up, proc.incarnation == inc else { return }
            for (p, task) in proc.tasks where task.inflight == request {
                trace("\(Self.name(w)) p\(p): store request \(request) timed out")
                storeFailed(w, p, reason: "store timeout")
            }
        case let .connectTimeout(w, session):
            let proc = workers[w]
            guard proc.up, proc.session == session, !proc.sessionOpen else { return }
            trace("\(Self.name(w)): dial of session \(session) timed out")
            proc.session = nil
            feed(w, .disconnected(reason: "connect timeout"))
        case let .sessionBroken(w, session):
            let proc = workers[w]
            guard proc.up, proc.session == session else { return }
            trace("\(Self.name(w)): session \(session) broke")
            proc.session = nil
            proc.sessionOpen = false
            feed(w, .disconnected(reason: "session broke"))
        case let .coordinatorTick(c, inc):
            let proc = coordinators[c]
            guard proc.up, proc.incarnation == inc, leader == c else { return }
            coordinatorStep(c) { core, t in try core.tick(now: t) }
            schedule(.coordinatorTick(c: c, incarnation: inc), at: now + config.tickMs)
        case .takeover(let c): takeover(c)
        case .coordinatorRestart(let c):
            coordinators[c].up = true
            coordinators[c].incarnation += 1
            trace("c\(c): restarted (follower)")
            if leader == nil { schedule(.takeover(c: c), at: now + random(200...2_000)) }
        case let .episode(episode, duration): start(episode, durationMs: duration)
        case .heal(let episode): heal(episode)
        case .workerRestart(let w):
            let proc = workers[w]
            if proc.incarnation > 0 || !proc.up {
                proc.incarnation += 1
                proc.core = Self.makeWorkerCore(seed: seed, w: w, incarnation: proc.incarnation, config: config)
            }
            proc.up = true
            proc.pausedUntil = nil
            proc.session = nil
            proc.sessionOpen = false
            proc.tasks = [:]
            proc.timerGeneration = [:]
            trace("\(Self.name(w)): started (incarnation \(proc.incarnation))")
            feed(w, .start)
        case .workerResume(let w):
            workers[w].pausedUntil = nil
        }
    }

    private func worker(of event: Event) -> Int? {
        switch event {
        case let .workerTimer(w, _, _, _), let .taskStep(w, _, _, _), let .storeTimeout(w, _, _),
             let .connectTimeout(w, _), let .sessionBroken(w, _):
            return w
        case .deliver(let m):
            switch m {
            case let .joined(w, _), let .refused(w, _), let .grant(w, _, _), let .revoke(w, _, _), let .renewal(w, _, _),
                 let .storeReply(w, _, _, _):
                return w
            default: return nil
            }
        default: return nil
        }
    }

    // MARK: network

    func linkKey(_ w: Int, store: Bool, up: Bool) -> String {
        "\(Self.name(w))\(up ? "→" : "←")\(store ? "store" : "coordinator")"
    }

    private func link(of m: Message) -> (w: Int, store: Bool, up: Bool) {
        switch m {
        case let .connect(w, _, _), let .heartbeat(w, _, _, _), let .report(w, _, _, _), let .close(w, _, _): return (w, false, true)
        case let .joined(w, _), let .refused(w, _), let .grant(w, _, _), let .revoke(w, _, _), let .renewal(w, _, _): return (w, false, false)
        case let .storeRequest(w, _, _, _): return (w, true, true)
        case let .storeReply(w, _, _, _): return (w, true, false)
        }
    }

    private func send(_ m: Message, extraDelay: Int64 = 0) {
        let (w, toStore, up) = link(of: m)
        let key = linkKey(w, store: toStore, up: up)
        if (cuts[key] ?? 0) > 0 {
            trace("lost on cut link \(key): \(m)")
            return
        }
        var delay = random(1...20) + extraDelay
        var fifo = true
        if inFaultWindow {
            if chance(perMille: dropPerMille) {
                fault("drop", "dropped on \(key): \(m)")
                return
            }
            if chance(perMille: delayPerMille) {
                delay += random(100...3_000)
                fault("delay", "delayed \(delay) ms on \(key): \(m)")
            }
            if chance(perMille: reorderPerMille) {
                fifo = false
                fault("reorder", "may overtake on \(key): \(m)")
            }
            if chance(perMille: duplicatePerMille) {
                fault("duplicate", "duplicated on \(key): \(m)")
                schedule(.deliver(m), at: now + delay + random(0...500))
            }
        }
        var at = now + delay
        if fifo {
            at = max(at, lastDelivery[key] ?? 0)
            lastDelivery[key] = at
        }
        schedule(.deliver(m), at: at)
    }

    private func deliver(_ m: Message) {
        switch m {
        case let .connect(w, session, c):
            let proc = coordinators[c]
            guard proc.up else { return }  // nobody listens: the dial times out
            guard leader == c, proc.core != nil else {
                send(.refused(w: w, session: session))
                return
            }
            proc.sessions[w] = session
            trace("c\(c): \(Self.name(w)) joins (session \(session))")
            send(.joined(w: w, session: session))
            coordinatorStep(c) { core, t in try core.join(Self.name(w), now: t) }
        case let .heartbeat(w, session, c, progress):
            guard acceptsFromWorker(c, w, session) else { return }
            var renewed: [WorkerCore.Lease] = []
            coordinatorStep(c) { core, t in
                let answer = try core.heartbeat(Self.name(w), progress: progress, eventsPerSecond: 0, now: t)
                renewed = answer.renewed.map { WorkerCore.Lease(partition: $0.partition, epoch: $0.epoch) }
                return answer.actions
            }
            trace("c\(c): heartbeat of \(Self.name(w)) \(progress.map { "\($0.partition)/\($0.epoch)@\($0.committedOffset)" }) renewed \(renewed)")
            send(.renewal(w: w, session: session, leases: renewed))
        case let .report(w, session, c, report):
            guard acceptsFromWorker(c, w, session) else { return }
            trace("c\(c): report of \(Self.name(w)): \(Self.describe(report))")
            let name = Self.name(w)
            coordinatorStep(c) { core, t in
                switch report {
                case let .released(lease, committed):
                    return try core.released(name, partition: lease.partition, epoch: lease.epoch, committedOffset: committed, now: t)
                case .fenced(let lease):
                    return try core.lost(name, partition: lease.partition, epoch: lease.epoch, now: t)
                case .failed(let lease, _):
                    return try core.failed(name, partition: lease.partition, epoch: lease.epoch, now: t)
                }
            }
        case let .close(w, session, c):
            guard acceptsFromWorker(c, w, session) else { return }
            coordinators[c].sessions[w] = nil
            coordinatorStep(c) { core, t in try core.leave(Self.name(w), now: t) }
        case let .joined(w, session):
            let proc = workers[w]
            guard proc.up, proc.session == session, !proc.sessionOpen else { return }
            proc.sessionOpen = true
            feed(w, .joined(heartbeatIntervalMs: config.heartbeatMs))
        case let .refused(w, session):
            let proc = workers[w]
            guard proc.up, proc.session == session else { return }
            proc.session = nil
            proc.sessionOpen = false
            feed(w, .disconnected(reason: "refused (not the leader)"))
        case let .grant(w, session, lease):
            guard workers[w].up, workers[w].session == session else { return }
            feed(w, .grant(lease))
        case let .revoke(w, session, lease):
            guard workers[w].up, workers[w].session == session else { return }
            feed(w, .revoke(lease))
        case let .renewal(w, session, leases):
            let proc = workers[w]
            guard proc.up, proc.session == session else { return }
            let reported = proc.core.unanswered.first ?? []
            feed(w, .renewal(leases))
            let kept = Set(leases)
            for lease in reported where !kept.contains(lease) {
                if let task = proc.tasks[lease.partition], task.lease == lease {
                    violate(Invariant.unrenewedLeaseStopped, "\(Self.name(w)) still runs \(lease) after a renewal that left it out")
                }
            }
        case let .storeRequest(w, inc, request, op):
            storeHandle(w, inc, request, op)
        case let .storeReply(w, inc, request, reply):
            let proc = workers[w]
            guard proc.up, proc.incarnation == inc else { return }
            guard let p = proc.tasks.first(where: { $0.value.inflight == request })?.key else { return }
            storeAnswered(w, p, reply)
        }
    }

    private func acceptsFromWorker(_ c: Int, _ w: Int, _ session: Int) -> Bool {
        let proc = coordinators[c]
        return proc.up && leader == c && proc.core != nil && proc.sessions[w] == session
    }

    // MARK: coordinators

    private func coordinatorStep(_ c: Int, _ body: (inout CoordinatorCore, Int64) throws -> [CoordinatorCore.Action]) {
        let proc = coordinators[c]
        guard var core = proc.core else { return }
        proc.core = nil  // one owner of the core's storage while it changes
        let t = now + proc.clockOffset
        let actions: [CoordinatorCore.Action]
        do {
            actions = try body(&core, t)
        } catch {
            trace("c\(c): core error \(error)")
            proc.core = core
            return
        }
        core.sent(actions, now: t)
        proc.core = core
        for action in actions {
            switch action {
            case let .grant(worker, p, epoch):
                trace("c\(c): grant p\(p) epoch \(epoch) to \(worker)")
                if let w = index(of: worker), let session = proc.sessions[w] {
                    send(.grant(w: w, session: session, lease: .init(partition: p, epoch: epoch)))
                }
            case let .revoke(worker, p, epoch):
                trace("c\(c): revoke p\(p) epoch \(epoch) from \(worker)")
                if let w = index(of: worker), let session = proc.sessions[w] {
                    send(.revoke(w: w, session: session, lease: .init(partition: p, epoch: epoch)))
                }
            }
        }
    }

    private func index(of worker: String) -> Int? {
        guard worker.first == "w", let w = Int(worker.dropFirst()), w >= 0, w < workers.count else { return nil }
        return w
    }

    private func takeover(_ c: Int) {
        let proc = coordinators[c]
        guard proc.up, leader == nil else { return }
        do {
            var core = try CoordinatorCore(partitions: config.partitions, leaseTTL: config.leaseTTL, ledger: ledger,
                                           now: now + proc.clockOffset, seed: seed &+ UInt64(c) &+ UInt64(proc.incarnation) &* 7)
            core.plantedBugs = config.plantedBugs
            proc.core = core
        } catch {
            trace("c\(c): could not load the ledger: \(error)")
            return
        }
        proc.sessions = [:]
        leader = c
        trace("c\(c): leads (incarnation \(proc.incarnation)), restored \(ledger.records.count) leases")
        schedule(.coordinatorTick(c: c, incarnation: proc.incarnation), at: now + config.tickMs)
    }

    // MARK: workers

    private func workerNow(_ w: Int) -> Int64 { now + workers[w].clockOffset }

    /// Feeds an input to the worker's core and performs its actions, and the inputs they cause, in order.
    func feed(_ w: Int, _ input: WorkerCore.Input) {
        var inputs = [input]
        var i = 0
        let incarnation = workers[w].incarnation
        // The process may crash inside the Kafka sink's calls: its new core is not fed the old one's inputs.
        while i < inputs.count, workers[w].incarnation == incarnation {
            let actions = workers[w].core.handle(inputs[i], nowMs: workerNow(w))
            i += 1
            for action in actions { inputs += perform(w, action) }
        }
    }

    private func perform(_ w: Int, _ action: WorkerCore.Action) -> [WorkerCore.Input] {
        let proc = workers[w]
        switch action {
        case .connect(let c):
            let session = nextSession
            nextSession += 1
            proc.session = session
            proc.sessionOpen = false
            proc.sessionCoordinator = c
            trace("\(Self.name(w)): dials c\(c) (session \(session))")
            send(.connect(w: w, session: session, coordinator: c))
            schedule(.connectTimeout(w: w, session: session), at: now + 1_000)
        case .startPartition(let lease):
            trace("\(Self.name(w)): starts \(lease)")
            var task = PartitionTask(lease: lease, token: nextToken)
            nextToken += 1
            task.phase = .claiming
            proc.tasks[lease.partition] = task
            request(w, lease.partition, .claim(partition: lease.partition, epoch: lease.epoch))
        case .revokePartition(let lease):
            guard var task = proc.tasks[lease.partition], task.lease == lease else {
                return [.host(.released(partition: lease.partition, epoch: lease.epoch, committedOffset: 0))]
            }
            task.releasing = true
            proc.tasks[lease.partition] = task
            if task.phase == .running && task.inflight == nil { return step(w, lease.partition) }
        case .dropPartition(let lease):
            if let task = proc.tasks[lease.partition], task.lease == lease {
                trace("\(Self.name(w)): drops \(lease)")
                proc.tasks[lease.partition] = nil
            }
        case .releaseAll:
            var inputs: [WorkerCore.Input] = []
            for p in proc.tasks.keys.sorted() {
                proc.tasks[p]?.releasing = true
                if let task = proc.tasks[p], task.phase == .running, task.inflight == nil { inputs += step(w, p) }
            }
            return inputs
        case .send(let report):
            if let session = proc.session, proc.sessionOpen {
                send(.report(w: w, session: session, coordinator: proc.sessionCoordinator, report: report))
            }
        case .sendHeartbeat(let leases):
            guard let session = proc.session, proc.sessionOpen else { break }
            let progress = leases.map { lease -> PartitionProgress in
                let task = proc.tasks[lease.partition]
                let committed = task?.lease == lease ? task?.committed ?? 0 : 0
                let finished = task?.lease == lease ? task?.finished ?? false : false
                return PartitionProgress(partition: lease.partition, epoch: lease.epoch, offset: committed, committedOffset: committed,
                                         watermark: 0, lag: config.offsets - committed, finished: finished)
            }
            send(.heartbeat(w: w, session: session, coordinator: proc.sessionCoordinator, progress: progress))
        case let .setTimer(timer, atMs):
            let generation = (proc.timerGeneration[timer] ?? 0) + 1
            proc.timerGeneration[timer] = generation
            schedule(.workerTimer(w: w, incarnation: proc.incarnation, timer: timer, generation: generation), at: atMs - proc.clockOffset)
        case .closeSession:
            if let session = proc.session {
                send(.close(w: w, session: session, coordinator: proc.sessionCoordinator))
            }
        case .stop:
            proc.up = false
        }
        return []
    }

    /// The partition task's next move: process a chunk and commit it, or release.
    private func step(_ w: Int, _ p: Int) -> [WorkerCore.Input] {
        let proc = workers[w]
        guard var task = proc.tasks[p], task.phase == .running, task.inflight == nil else { return [] }
        if task.releasing && task.processed <= task.committed {
            proc.tasks[p] = nil
            trace("\(Self.name(w)): released \(task.lease) at \(task.committed)")
            let event = PartitionHost.Event.released(partition: p, epoch: task.lease.epoch, committedOffset: task.committed)
            return [.host(event)]
        }
        if task.finished { return [] }
        if !task.releasing {
            task.processed = min(config.offsets, task.processed + random(1...config.maxChunk))
        }
        let commit = SimCheckpointStore.Commit(partition: p, seq: task.seq + 1, epoch: task.lease.epoch, from: task.committed,
                                               to: task.processed, finished: task.processed == config.offsets)
        proc.tasks[p] = task
        if kafka != nil && config.plantedBugs.armed(.kafkaPublishBeforeStoreCommit) {
            guard kafkaPublish(w, p, commit) else { return [] }
        }
        request(w, p, .commit(commit))
        return []
    }

    private func request(_ w: Int, _ p: Int, _ op: StoreOp) {
        let proc = workers[w]
        let id = nextRequest
        nextRequest += 1
        proc.tasks[p]?.inflight = id
        proc.tasks[p]?.inflightOp = op
        send(.storeRequest(w: w, incarnation: proc.incarnation, request: id, op: op))
        schedule(.storeTimeout(w: w, incarnation: proc.incarnation, request: id), at: now + config.storeTimeoutMs)
    }

    private func storeAnswered(_ w: Int, _ p: Int, _ reply: StoreReply) {
        let proc = workers[w]
        guard var task = proc.tasks[p] else { return }
        task.inflight = nil
        switch reply {
        case let .claimed(ok, last):
            guard ok else {
                proc.tasks[p] = nil
                trace("\(Self.name(w)): claim of \(task.lease) fenced")
                feed(w, .host(.fenced(partition: p, epoch: task.lease.epoch)))
                return
            }
            task.committed = last.offset
            task.seq = last.seq
            task.processed = last.offset
            task.finished = last.finished
            // (A zombie's late claim answer is no matter: its commits will be fenced.)
            if let confirmed = cdc?.confirmed[p], store.epoch(partition: p) == task.lease.epoch {
                if last.offset < confirmed {
                    violate(Invariant.cdcReplayAvailable, "partition \(p) resumes at \(last.offset) (seq \(last.seq)) but its slot confirmed \(confirmed): the changes in [\(last.offset), \(confirmed)) are gone")
                }
            }
            task.cdcNewestCommitted = last.offset
            proc.tasks[p] = task
            if kafka != nil {
                // Before the partition runs: fence older producers, read the published progress,
                // publish again what the store committed after it (a failure retries the claim,
                // `storeRetries` times in all).
                guard kafkaRecover(w, p, committedSeq: last.seq), let recovered = proc.tasks[p] else { return }
                task = recovered
            }
            task.errors = 0
            task.phase = .running
            proc.tasks[p] = task
            trace("\(Self.name(w)): claimed \(task.lease), resumes at \(last.offset) (seq \(last.seq))")
            if task.releasing { for input in step(w, p) { feed(w, input) } } else { schedule(.taskStep(w: w, incarnation: proc.incarnation, partition: p, token: task.token), at: now + random(100...600)) }
        case .committed(.accepted):
            guard case .commit(let c)? = task.inflightOp else { return }
            task.committed = c.to
            task.seq = c.seq
            task.errors = 0
            task.finished = c.finished
            if cdc != nil {
                // `PostgresCdcSource.committed(position:)`: confirm the checkpoint before the newest.
                let confirm = config.plantedBugs.armed(.cdcConfirmEarly) ? c.to : task.cdcNewestCommitted
                let before = cdc?.confirmed[p] ?? 0
                cdc?.confirmed[p] = max(before, confirm)
                task.cdcNewestCommitted = c.to
            }
            proc.tasks[p] = task
            if kafka != nil && !config.plantedBugs.armed(.kafkaPublishBeforeStoreCommit) {
                // The checkpoint (and its output, in the store's outbox) is committed: now one Kafka transaction.
                guard kafkaPublish(w, p, c), let published = proc.tasks[p] else { return }
                task = published
            }
            if task.releasing { for input in step(w, p) { feed(w, input) } } else if !task.finished {
                schedule(.taskStep(w: w, incarnation: proc.incarnation, partition: p, token: task.token), at: now + random(100...600))
            } else {
                trace("\(Self.name(w)): \(task.lease) finished")
            }
        case .committed(.fenced(let current)):
            proc.tasks[p] = nil
            trace("\(Self.name(w)): commit of \(task.lease) fenced (store epoch \(current))")
            feed(w, .host(.fenced(partition: p, epoch: task.lease.epoch)))
        case .committed(.outOfSequence(let stored)):
            proc.tasks[p] = task
            storeFailed(w, p, reason: "checkpoint does not follow the stored \(stored)")
        case .error(let reason):
            proc.tasks[p] = task
            storeFailed(w, p, reason: reason)
        }
    }

    /// A store operation failed (not fenced): retried a few times, then the partition fails.
    func storeFailed(_ w: Int, _ p: Int, reason: String) {
        let proc = workers[w]
        guard var task = proc.tasks[p] else { return }
        task.inflight = nil
        task.errors += 1
        if task.errors > config.storeRetries {
            proc.tasks[p] = nil
            trace("\(Self.name(w)): \(task.lease) failed: \(reason)")
            feed(w, .host(.failed(partition: p, epoch: task.lease.epoch, reason: reason)))
            return
        }
        proc.tasks[p] = task
        guard let op = task.inflightOp else { return }
        trace("\(Self.name(w)): \(task.lease) retries after: \(reason)")
        request(w, p, op)
    }

    // MARK: the store

    private func storeHandle(_ w: Int, _ inc: Int, _ request: Int, _ op: StoreOp) {
        var latency = random(1...10)
        if slowStores > 0 { latency += random(200...2_000) }
        if storeOutages > 0 {
            trace("store: refuses request \(request) of \(Self.name(w)) (outage)")
            send(.storeReply(w: w, incarnation: inc, request: request, reply: .error("store unavailable")), extraDelay: latency)
            return
        }
        let reply: StoreReply
        switch op {
        case let .claim(p, epoch):
            let ok = store.claim(partition: p, epoch: epoch)
            trace("store: claim p\(p) epoch \(epoch) by \(Self.name(w))#\(inc): \(ok)")
            if ok, let corrupt = cdc?.corrupt[p], corrupt == store.last(partition: p).seq {
                // The runner finds the newest checkpoint corrupt and rolls back to the one before.
                store.rollBack(partition: p, to: corrupt - 1)
                cdc?.corrupt[p] = nil
                cdc?.fellBackTo[p] = corrupt - 1
                result.cdcFallbacks += 1
                trace("store: p\(p)'s checkpoint \(corrupt) is corrupt: rolled back to \(corrupt - 1) (offset \(store.last(partition: p).offset))")
            }
            reply = .claimed(ok, store.last(partition: p))
        case .commit(let c):
            let claimedEpoch = store.epoch(partition: c.partition)
            let previous = store.last(partition: c.partition)
            let outcome = store.commit(c)
            trace("store: commit \(c) by \(Self.name(w))#\(inc): \(outcome)")
            if outcome == .accepted {
                result.commits += 1
                checkAccepted(c, claimedEpoch: claimedEpoch, previous: previous, owner: "\(Self.name(w))#\(inc)")
                if inFaultWindow && chance(perMille: lostAckPerMille) {
                    fault("lost-ack", "the acknowledgement of \(c) is lost")
                    return
                }
            }
            reply = .committed(outcome)
        }
        send(.storeReply(w: w, incarnation: inc, request: request, reply: reply), extraDelay: latency)
    }

    private func checkAccepted(_ c: SimCheckpointStore.Commit, claimedEpoch: Int64, previous: SimCheckpointStore.Last, owner: String) {
        if c.epoch < claimedEpoch {
            violate(Invariant.epochNotBelowClaimed, "partition \(c.partition): commit \(c) accepted while the claimed epoch is \(claimedEpoch)")
        }
        if c.from != previous.offset || c.to <= c.from || c.to > config.offsets || previous.finished || c.finished != (c.to == config.offsets) {
            violate(Invariant.chainGapFree, "partition \(c.partition): commit \(c) after the chain's end at \(previous.offset)\(previous.finished ? " (finished)" : "")")
        }
        if let other = committers[c.partition]?[c.epoch], other != owner {
            violate(Invariant.oneOwnerPerEpoch, "partition \(c.partition) epoch \(c.epoch): commits accepted from \(other) and \(owner)")
        }
        committers[c.partition, default: [:]][c.epoch] = owner
    }

    // MARK: fault episodes

    private func start(_ episode: Episode, durationMs: Int64) {
        switch episode {
        case let .cutCoordinator(w, up, down), let .cutStore(w, up, down):
            let toStore: Bool
            if case .cutStore = episode { toStore = true } else { toStore = false }
            fault(toStore ? "cut-store" : "cut-coordinator", "\(Self.name(w)) cut from the \(toStore ? "store" : "coordinator")\(up && down ? "" : up ? " (its sends only)" : " (what it receives only)") for \(durationMs) ms")
            if up { cuts[linkKey(w, store: toStore, up: true), default: 0] += 1 }
            if down { cuts[linkKey(w, store: toStore, up: false), default: 0] += 1 }
            if !toStore, let session = workers[w].session, chance(perMille: 500) {
                // Keepalives notice the cut (otherwise it is a silent blackhole).
                schedule(.sessionBroken(w: w, session: session), at: now + random(100...2_000))
            }
        case .crashWorker(let w):
            guard workers[w].up else { return }
            fault("crash-worker", "\(Self.name(w)) crashes, restarts in \(durationMs) ms")
            crashWorker(w, restartInMs: durationMs)
            return
        case .pauseWorker(let w):
            guard workers[w].up, workers[w].pausedUntil == nil else { return }
            fault("pause-worker", "\(Self.name(w)) paused for \(durationMs) ms")
            workers[w].pausedUntil = now + durationMs
            schedule(.workerResume(w: w), at: now + durationMs)
            return
        case .failover:
            guard let c = leader else { return }
            fault("coordinator-failover", "c\(c) crashes (restarts in \(durationMs) ms); c\(1 - c) takes over from the ledger")
            let proc = coordinators[c]
            proc.up = false
            proc.core = nil
            for (w, session) in proc.sessions.sorted(by: { $0.key < $1.key }) { schedule(.sessionBroken(w: w, session: session), at: now + random(50...500)) }
            proc.sessions = [:]
            leader = nil
            schedule(.takeover(c: 1 - c), at: now + random(300...3_000))
            schedule(.coordinatorRestart(c: c), at: now + durationMs)
            return
        case .storeErrors:
            fault("store-errors", "the store refuses every operation for \(durationMs) ms")
            storeOutages += 1
        case .slowStore:
            fault("slow-store", "the store answers slowly for \(durationMs) ms")
            slowStores += 1
        case let .clockJumpWorker(w, delta):
            fault("clock-jump", "\(Self.name(w))'s clock jumps \(delta) ms")
            workers[w].clockOffset += delta
            return
        case .clockJumpCoordinator(let delta):
            guard let c = leader else { return }
            fault("clock-jump", "c\(c)'s clock jumps \(delta) ms")
            coordinators[c].clockOffset += delta
            return
        case .kafkaOutage:
            fault("kafka-outage", "the Kafka broker answers no producer for \(durationMs) ms")
            kafka?.outages += 1
        case .corruptCheckpoint(let p):
            let newest = store.last(partition: p).seq
            guard newest > 0, cdc?.fellBackTo[p] != newest else { return }
            cdc?.corrupt[p] = newest
            let owner = workers.indices.first { workers[$0].up && workers[$0].tasks[p] != nil }
            fault("corrupt-checkpoint", "p\(p)'s checkpoint \(newest) is damaged" + (owner.map { "; its owner \(Self.name($0)) crashes, restarts in \(durationMs) ms" } ?? ""))
            if let owner { crashWorker(owner, restartInMs: durationMs) }
            return
        }
        schedule(.heal(episode), at: now + durationMs)
    }

    /// The process dies at once: its tasks, session and in-flight answers are gone.
    func crashWorker(_ w: Int, restartInMs: Int64) {
        let proc = workers[w]
        proc.up = false
        proc.tasks = [:]
        proc.session = nil
        proc.incarnation += 1  // in-flight replies and timers of the old process are void
        schedule(.workerRestart(w: w), at: now + restartInMs)
    }

    private func heal(_ episode: Episode) {
        switch episode {
        case let .cutCoordinator(w, up, down), let .cutStore(w, up, down):
            let toStore: Bool
            if case .cutStore = episode { toStore = true } else { toStore = false }
            if up { cuts[linkKey(w, store: toStore, up: true), default: 1] -= 1 }
            if down { cuts[linkKey(w, store: toStore, up: false), default: 1] -= 1 }
            trace("heal: \(Self.name(w)) reaches the \(toStore ? "store" : "coordinator") again")
        case .storeErrors:
            storeOutages -= 1
            trace("heal: the store accepts operations again")
        case .slowStore:
            slowStores -= 1
            trace("heal: the store is fast again")
        case .kafkaOutage:
            kafka?.outages -= 1
            trace("heal: the Kafka broker answers again")
        default: break
        }
    }
}

extension Simulator {
    /// Runs one seed.
    public static func run(seed: UInt64, config: SimConfig = SimConfig()) -> SimResult {
        Simulator(seed: seed, config: config).run()
    }
}

extension Simulator.StoreOp: CustomStringConvertible {
    var description: String {
        switch self {
        case let .claim(p, epoch): return "claim p\(p) epoch \(epoch)"
        case .commit(let c): return "commit \(c)"
        }
    }
}

extension Simulator.StoreReply: CustomStringConvertible {
    var description: String {
        switch self {
        case let .claimed(ok, last): return ok ? "claimed (last seq \(last.seq) at \(last.offset))" : "claim refused"
        case .committed(let outcome): return "\(outcome)"
        case .error(let reason): return "error: \(reason)"
        }
    }
}

extension Simulator.Message: CustomStringConvertible {
    var description: String {
        func w(_ i: Int) -> String { Simulator.name(i) }
        switch self {
        case let .connect(i, s, c): return "\(w(i))→c\(c) connect (session \(s))"
        case let .heartbeat(i, s, c, progress):
            return "\(w(i))→c\(c) heartbeat \(progress.map { "\($0.partition)/\($0.epoch)@\($0.committedOffset)\($0.finished ? " finished" : "")" }) (session \(s))"
        case let .report(i, s, c, report): return "\(w(i))→c\(c) \(Simulator.describe(report)) (session \(s))"
        case let .close(i, s, c): return "\(w(i))→c\(c) close (session \(s))"
        case let .joined(i, s): return "→\(w(i)) joined (session \(s))"
        case let .refused(i, s): return "→\(w(i)) refused (session \(s))"
        case let .grant(i, s, lease): return "→\(w(i)) grant \(lease) (session \(s))"
        case let .revoke(i, s, lease): return "→\(w(i)) revoke \(lease) (session \(s))"
        case let .renewal(i, s, leases): return "→\(w(i)) renewal \(leases) (session \(s))"
        case let .storeRequest(i, inc, r, op): return "\(w(i))#\(inc)→store #\(r) \(op)"
        case let .storeReply(i, inc, r, reply): return "store→\(w(i))#\(inc) #\(r) \(reply)"
        }
    }
}

extension Simulator {
    static func describe(_ report: WorkerCore.Report) -> String {
        switch report {
        case let .released(lease, committed): return "released \(lease) at \(committed)"
        case .fenced(let lease): return "fenced \(lease)"
        case let .failed(lease, reason): return "failed \(lease): \(reason)"
        }
    }
}
