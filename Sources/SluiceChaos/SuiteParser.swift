import Foundation
import Yams
import SluiceJob
import SluiceStorage

/// A refused suite: `path` names the field (`faults[2].target`, `topology.workers`).
public struct SuiteError: Error, Equatable, CustomStringConvertible {
    public var path: String
    public var message: String
    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }
    public var description: String { path.isEmpty ? "suite: \(message)" : "suite: \(path): \(message)" }
}

extension Suite {
    public static func load(path: String) throws -> Suite {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw SuiteError(path: "", message: "cannot read suite file '\(path)': \(error.localizedDescription)")
        }
        return try parse(yaml: text)
    }

    public static func parse(yaml: String) throws -> Suite {
        let reader = SuiteReader()
        let suite = try reader.suite(reader.yaml.root(of: yaml, empty: "the suite is empty"))
        try suite.validate()
        return suite
    }

    /// Checks that hold across fields: targets exist when their fault fires, PostgreSQL-only faults.
    func validate() throws {
        let kinds = faults.enumerated().map { ("faults[\($0.offset)].kind", $0.element.kind) }
            + (random?.kinds ?? []).enumerated().map { ("random.kinds[\($0.offset)]", $0.element) }
        for (path, kind) in kinds {
            if kind.needsKafka && !usesKafka {
                throw SuiteError(path: path, message: "'\(kind.rawValue)' needs a Kafka broker: set `source: kafka` or `sink: kafka` (this suite reads the generator and writes to its store)")
            }
            if kind == .kafkaBrokerDown && path.hasPrefix("random.") && kafka.brokers < 2 {
                throw SuiteError(path: path, message: "'kafka_broker_down' needs a broker that stays up: set kafka.brokers to 2 or more, or remove it")
            }
            if kind.needsPostgres && store == .sqlite {
                throw SuiteError(path: path, message: "'\(kind.rawValue)' needs `store: postgres`; this suite's store is sqlite")
            }
            if kind == .fillDisk, case .postgres = store {
                throw SuiteError(path: path, message: "'fill_disk' fails a worker's own file writes, and with `store: postgres` it writes none; use cut_worker_from_store (mode: reset) for a store that refuses a worker")
            }
            if kind == .restartStore, case let .postgres(url?) = store {
                throw SuiteError(path: path, message: "'restart_store' restarts the server the harness starts itself (`store: postgres`); it cannot restart the server at \(PostgresURL.redact(url))")
            }
        }
        if kafkaGiven && !usesKafka {
            throw SuiteError(path: "kafka", message: "configures the broker of `source: kafka` or `sink: kafka`, and this suite has neither; remove it or set one")
        }
        try validateKafkaFaults()
        if topology.storeRetryMs != nil, store == .sqlite {
            throw SuiteError(path: "topology.store_retry_ms", message: "applies to `store: postgres` only; remove it")
        }
        // Replay the fixed faults over the membership they change, so that a target is a worker that
        // runs at that moment.
        var members = Membership(initial: topology.workers)
        for (i, fault) in faults.enumerated().sorted(by: { $0.element.at < $1.element.at }) {
            if let target = fault.target, !members.alive.contains(target) {
                throw SuiteError(path: "faults[\(i)].target",
                                 message: "\(target) is not running at \(format(fault.at)) s (running: \(members.alive.sorted().joined(separator: ", ")))")
            }
            members.apply(fault)
        }
        if members.everStarted > 64 {
            throw SuiteError(path: "faults", message: "more than 64 workers would be started")
        }
    }
}

extension Suite {
    /// The Kafka faults' fields against the suite: topics it has, partitions and brokers that exist,
    /// and, replayed in time, never a broker taken down twice, all of them down, or a leader moved
    /// to a broker that is down.
    func validateKafkaFaults() throws {
        var down: [Int: Double] = [:]  // broker → when it comes back
        for (i, fault) in faults.enumerated().sorted(by: { $0.element.at < $1.element.at }) where fault.kind.needsKafka {
            let path = "faults[\(i)]"
            down = down.filter { $0.value > fault.at }
            if let broker = fault.broker, !(1...kafka.brokers).contains(broker) {
                throw SuiteError(path: "\(path).broker", message: "no broker \(broker): the suite's broker has ids 1…\(kafka.brokers) (kafka.brokers)")
            }
            switch fault.kind {
            case .kafkaBrokerDown:
                guard let broker = fault.broker else { break }
                if down[broker] != nil {
                    throw SuiteError(path: "\(path).broker", message: "broker \(broker) is already down at \(format(fault.at)) s")
                }
                if down.count + 1 >= kafka.brokers {
                    throw SuiteError(path: "\(path).broker", message: "taking broker \(broker) down at \(format(fault.at)) s would leave no broker up (kafka.brokers: \(kafka.brokers))")
                }
                down[broker] = fault.healsAt
            case .kafkaLeaderChange:
                switch fault.topic {
                case .input where source != .kafka, .output where sink != .kafka, .progress where sink != .kafka:
                    throw SuiteError(path: "\(path).topic", message: "the \(fault.topic.rawValue) topic exists with `\(fault.topic == .input ? "source" : "sink"): kafka` only")
                default: break
                }
                let partitions = fault.topic == .progress ? 1 : topology.partitions
                if let p = fault.partition, p >= partitions {
                    throw SuiteError(path: "\(path).partition", message: "the \(fault.topic.rawValue) topic has partitions 0…\(partitions - 1), not \(p)")
                }
                if let broker = fault.broker, down[broker] != nil {
                    throw SuiteError(path: "\(path).broker", message: "broker \(broker) is down at \(format(fault.at)) s; move the leader to a broker that is up")
                }
            default:
                break
            }
        }
    }
}

/// Which workers run, as faults add, remove and kill them (a kill with a restart keeps the id).
struct Membership {
    private(set) var alive: Set<String>
    private(set) var everStarted: Int

    init(initial: Int) {
        alive = Set((1...max(1, initial)).map { "worker-\($0)" })
        everStarted = initial
    }

    /// The id the next added worker gets.
    var nextID: String { "worker-\(everStarted + 1)" }

    mutating func apply(_ fault: FaultSpec) {
        switch fault.kind {
        case .addWorker:
            alive.insert(nextID)
            everStarted += 1
        case .removeWorker:
            if let t = fault.target { alive.remove(t) }
        case .killWorker where fault.restartAfter == nil:
            if let t = fault.target { alive.remove(t) }
        default:
            break
        }
    }
}

/// Walks the YAML tree by hand so that every error carries the path of the offending field.
private struct SuiteReader {
    let yaml = YAMLReader { SuiteError(path: $0, message: $1) }

    func suite(_ root: Node) throws -> Suite {
        let top = try yaml.mapping(root, path: "", allowed: ["name", "store", "source", "sink", "kafka", "topology", "workload", "job", "bounds", "faults", "random"])
        guard let nameNode = top["name"] else { throw SuiteError(path: "name", message: "missing") }
        var suite = Suite(name: try yaml.string(nameNode, path: "name"))
        if let node = top["store"] { suite.store = try store(node) }
        if let node = top["source"] {
            let text = try yaml.string(node, path: "source")
            guard let source = Suite.Source(rawValue: text) else {
                throw SuiteError(path: "source", message: "expected generator or kafka, got '\(text)'")
            }
            suite.source = source
        }
        if let node = top["sink"] {
            let text = try yaml.string(node, path: "sink")
            guard let sink = Suite.SinkKind(rawValue: text) else {
                throw SuiteError(path: "sink", message: "expected store (the store's own sink) or kafka, got '\(text)'")
            }
            suite.sink = sink
        }
        if let node = top["kafka"] {
            let map = try yaml.mapping(node, path: "kafka", allowed: ["brokers"])
            if let n = map["brokers"] { suite.kafka.brokers = Int(try yaml.integer(n, path: "kafka.brokers", in: 1...16)) }
            suite.kafkaGiven = true
        }
        if let node = top["topology"] { suite.topology = try topology(node) }
        if let node = top["workload"] { suite.workload = try workload(node) }
        if let node = top["job"] { suite.job = try yaml.string(node, path: "job") }
        if let node = top["bounds"] { suite.bounds = try bounds(node) }
        if let node = top["faults"] {
            guard case .sequence(let items) = node else {
                throw SuiteError(path: "faults", message: "expected a list such as `- {at: 10, kind: kill_worker, target: worker-2}`")
            }
            suite.faults = try items.enumerated().map { try fault($1, path: "faults[\($0)]") }
        }
        if let node = top["random"] { suite.random = try random(node) }
        if suite.faults.isEmpty && suite.random == nil {
            throw SuiteError(path: "faults", message: "a suite needs `faults:`, `random:` or both")
        }
        return suite
    }

    private func store(_ node: Node) throws -> Suite.Store {
        if case .scalar(let s) = node {
            switch s.string {
            case "sqlite": return .sqlite
            case "postgres": return .postgres(url: nil)
            default: break
            }
            if s.string.hasPrefix("postgres://") || s.string.hasPrefix("postgresql://") { return .postgres(url: s.string) }
        }
        throw SuiteError(path: "store", message: "expected sqlite, postgres, or a postgres://… URL, got '\(node.string ?? "a non-scalar")'")
    }

    private func topology(_ node: Node) throws -> Suite.Topology {
        let map = try yaml.mapping(node, path: "topology", allowed: ["workers", "partitions", "lease_ttl_ms", "heartbeat_ms", "store_retry_ms", "coordinators"])
        var t = Suite.Topology()
        if let n = map["workers"] { t.workers = Int(try yaml.integer(n, path: "topology.workers", in: 1...32)) }
        if let n = map["partitions"] { t.partitions = Int(try yaml.integer(n, path: "topology.partitions", in: 1...256)) }
        if let n = map["lease_ttl_ms"] { t.leaseTTLMs = try yaml.integer(n, path: "topology.lease_ttl_ms", in: 200...600_000) }
        if let n = map["heartbeat_ms"] { t.heartbeatMs = try yaml.integer(n, path: "topology.heartbeat_ms", in: 50...600_000) }
        if let n = map["store_retry_ms"] { t.storeRetryMs = try yaml.integer(n, path: "topology.store_retry_ms", in: 100...3_600_000) }
        if let n = map["coordinators"] { t.coordinators = Int(try yaml.integer(n, path: "topology.coordinators", in: 1...3)) }
        guard t.heartbeatMs < t.leaseTTLMs else {
            throw SuiteError(path: "topology.heartbeat_ms", message: "must be below lease_ttl_ms (\(t.leaseTTLMs))")
        }
        return t
    }

    private func workload(_ node: Node) throws -> Suite.Workload {
        let map = try yaml.mapping(node, path: "workload", allowed: ["seed", "events", "keys", "seconds"])
        var w = Suite.Workload()
        if let n = map["seed"] { w.seed = UInt64(try yaml.integer(n, path: "workload.seed", in: 0...Int64.max)) }
        if let n = map["events"] { w.events = Int(try yaml.integer(n, path: "workload.events", in: 1...1_000_000_000)) }
        if let n = map["keys"] { w.keys = Int(try yaml.integer(n, path: "workload.keys", in: 1...100_000_000)) }
        if let n = map["seconds"] { w.seconds = try yaml.number(n, path: "workload.seconds", in: 1...86_400) }
        return w
    }

    private func bounds(_ node: Node) throws -> Suite.Bounds {
        let map = try yaml.mapping(node, path: "bounds", allowed: ["recovery_s", "run_s"])
        var b = Suite.Bounds()
        if let n = map["recovery_s"] { b.recoverySeconds = try yaml.number(n, path: "bounds.recovery_s", in: 0.1...3_600) }
        if let n = map["run_s"] { b.runSeconds = try yaml.number(n, path: "bounds.run_s", in: 1...86_400) }
        return b
    }

    private func random(_ node: Node) throws -> Suite.RandomNemesis {
        let map = try yaml.mapping(node, path: "random", allowed: ["seed", "start", "until", "gap_s", "duration_s", "kinds", "min_workers", "max_workers", "concurrency"])
        var r = Suite.RandomNemesis()
        if let n = map["seed"] { r.seed = UInt64(try yaml.integer(n, path: "random.seed", in: 0...Int64.max)) }
        if let n = map["start"] { r.start = try yaml.number(n, path: "random.start", in: 0...86_400) }
        if let n = map["until"] { r.until = try yaml.number(n, path: "random.until", in: 0...86_400) }
        guard r.until >= r.start else { throw SuiteError(path: "random.until", message: "must not be before random.start (\(format(r.start)))") }
        if let n = map["gap_s"] { r.gap = try range(n, path: "random.gap_s") }
        if let n = map["duration_s"] { r.duration = try range(n, path: "random.duration_s") }
        if let n = map["kinds"] {
            guard case .sequence(let items) = n, !items.isEmpty else {
                throw SuiteError(path: "random.kinds", message: "expected a non-empty list of fault kinds")
            }
            r.kinds = try items.enumerated().map { try kind($1, path: "random.kinds[\($0)]") }
        }
        if let n = map["min_workers"] { r.minWorkers = Int(try yaml.integer(n, path: "random.min_workers", in: 1...32)) }
        if let n = map["max_workers"] { r.maxWorkers = Int(try yaml.integer(n, path: "random.max_workers", in: 1...64)) }
        if let n = map["concurrency"] { r.concurrency = Int(try yaml.integer(n, path: "random.concurrency", in: 1...16)) }
        guard r.maxWorkers >= r.minWorkers else {
            throw SuiteError(path: "random.max_workers", message: "must be at least min_workers (\(r.minWorkers))")
        }
        return r
    }

    private func kind(_ node: Node, path: String) throws -> FaultKind {
        let text = try yaml.string(node, path: path)
        guard let kind = FaultKind(rawValue: text) else {
            throw SuiteError(path: path, message: "unknown fault kind '\(text)'; expected one of \(FaultKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return kind
    }

    private func fault(_ node: Node, path: String) throws -> FaultSpec {
        let map = try yaml.mapping(node, path: path, allowed: ["at", "kind", "target", "for", "restart_after", "mode", "direction",
                                                          "delay_ms", "jitter_ms", "bytes_per_s", "file_size_limit",
                                                          "broker", "topic", "partition", "api", "count", "error"])
        guard let kindNode = map["kind"] else { throw SuiteError(path: "\(path).kind", message: "missing") }
        let kind = try kind(kindNode, path: "\(path).kind")
        guard let atNode = map["at"] else { throw SuiteError(path: "\(path).at", message: "missing; seconds after the start") }
        var fault = FaultSpec(at: try yaml.number(atNode, path: "\(path).at", in: 0...86_400), kind: kind)
        func forbid(_ keys: [String]) throws {
            for key in keys where map[key] != nil {
                throw SuiteError(path: "\(path).\(key)", message: "not used by \(kind.rawValue); remove it")
            }
        }
        if kind.needsTarget {
            guard let t = map["target"] else { throw SuiteError(path: "\(path).target", message: "missing; a worker id such as worker-2") }
            let target = try yaml.string(t, path: "\(path).target")
            guard target.hasPrefix("worker-"), let n = Int(target.dropFirst(7)), n >= 1 else {
                throw SuiteError(path: "\(path).target", message: "expected a worker id such as worker-2, got '\(target)'")
            }
            fault.target = target
        } else {
            try forbid(["target"])
        }
        if kind.lasts {
            guard let d = map["for"] else { throw SuiteError(path: "\(path).for", message: "missing; how long the fault lasts (s)") }
            fault.duration = try yaml.number(d, path: "\(path).for", in: 0.1...86_400)
        } else {
            try forbid(["for"])
        }
        switch kind {
        case .killWorker, .killCoordinator, .restartStore:
            if let r = map["restart_after"] {
                fault.restartAfter = try yaml.number(r, path: "\(path).restart_after", in: 0...86_400)
            } else if kind != .killWorker {
                fault.restartAfter = 2  // the cluster cannot go on without its coordinator (or store)
            }
        default:
            try forbid(["restart_after"])
        }
        if kind == .cutWorker || kind == .cutWorkerFromStore {
            guard let m = map["mode"] else { throw SuiteError(path: "\(path).mode", message: "missing; expected one of blackhole, delay, reset, bandwidth") }
            switch try yaml.string(m, path: "\(path).mode") {
            case "blackhole":
                fault.network = .blackhole
                try forbid(["delay_ms", "jitter_ms", "bytes_per_s"])
            case "reset":
                fault.network = .reset
                try forbid(["delay_ms", "jitter_ms", "bytes_per_s", "direction"])
            case "delay":
                guard let d = map["delay_ms"] else { throw SuiteError(path: "\(path).delay_ms", message: "missing; the added latency (ms)") }
                let jitter = try map["jitter_ms"].map { try yaml.integer($0, path: "\(path).jitter_ms", in: 0...60_000) } ?? 0
                fault.network = .delay(ms: Int(try yaml.integer(d, path: "\(path).delay_ms", in: 0...60_000)), jitterMs: Int(jitter))
                try forbid(["bytes_per_s"])
            case "bandwidth":
                guard let b = map["bytes_per_s"] else { throw SuiteError(path: "\(path).bytes_per_s", message: "missing; the bandwidth (bytes per second)") }
                fault.network = .bandwidth(bytesPerSecond: Int(try yaml.integer(b, path: "\(path).bytes_per_s", in: 1...1_000_000_000)))
                try forbid(["delay_ms", "jitter_ms"])
            case let other:
                throw SuiteError(path: "\(path).mode", message: "unknown mode '\(other)'; expected one of blackhole, delay, reset, bandwidth")
            }
            if let d = map["direction"] {
                let text = try yaml.string(d, path: "\(path).direction")
                guard let direction = Direction(rawValue: text) else {
                    throw SuiteError(path: "\(path).direction", message: "unknown direction '\(text)'; expected one of both, upstream, downstream")
                }
                fault.direction = direction
            }
        } else {
            try forbid(["mode", "direction", "delay_ms", "jitter_ms", "bytes_per_s"])
        }
        if kind == .fillDisk {
            if let l = map["file_size_limit"] { fault.fileSizeLimit = Int(try yaml.integer(l, path: "\(path).file_size_limit", in: 0...(1 << 40))) }
        } else {
            try forbid(["file_size_limit"])
        }
        try kafkaFields(of: &fault, map: map, path: path, forbid: forbid)
        return fault
    }

    /// `broker` (kafka_broker_down, kafka_leader_change), `topic` and `partition`
    /// (kafka_leader_change), `api`, `count` and `error` (kafka_request_errors).
    private func kafkaFields(of fault: inout FaultSpec, map: [String: Node], path: String, forbid: ([String]) throws -> Void) throws {
        func required(_ key: String, _ hint: String) throws -> Node {
            guard let node = map[key] else { throw SuiteError(path: "\(path).\(key)", message: "missing; \(hint)") }
            return node
        }
        switch fault.kind {
        case .kafkaBrokerDown:
            fault.broker = Int(try yaml.integer(try required("broker", "the broker to take down (1…N)"), path: "\(path).broker", in: 1...16))
            try forbid(["topic", "partition", "api", "count", "error"])
        case .kafkaLeaderChange:
            fault.broker = Int(try yaml.integer(try required("broker", "the new leader (1…N)"), path: "\(path).broker", in: 1...16))
            fault.partition = Int(try yaml.integer(try required("partition", "the partition whose leader moves"), path: "\(path).partition", in: 0...255))
            if let node = map["topic"] {
                let text = try yaml.string(node, path: "\(path).topic")
                guard let topic = KafkaTopicRole(rawValue: text) else {
                    throw SuiteError(path: "\(path).topic", message: "expected one of \(KafkaTopicRole.allCases.map(\.rawValue).joined(separator: ", ")), got '\(text)'")
                }
                fault.topic = topic
            }
            try forbid(["api", "count", "error"])
        case .kafkaRequestErrors:
            let apiText = try yaml.string(try required("api", "one of \(KafkaAPI.allCases.map(\.rawValue).joined(separator: ", "))"), path: "\(path).api")
            guard let api = KafkaAPI(rawValue: apiText) else {
                throw SuiteError(path: "\(path).api", message: "unknown API '\(apiText)'; expected one of \(KafkaAPI.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            fault.api = api
            fault.count = Int(try yaml.integer(try required("count", "how many requests fail"), path: "\(path).count", in: 1...10_000))
            if let node = map["error"] {
                let text = try yaml.string(node, path: "\(path).error")
                guard let code = KafkaRetriableError(rawValue: text) else {
                    throw SuiteError(path: "\(path).error", message: "expected a retriable Kafka error: \(KafkaRetriableError.allCases.map(\.rawValue).joined(separator: ", ")); got '\(text)'")
                }
                fault.errorCode = code
            }
            try forbid(["broker", "topic", "partition"])
        default:
            try forbid(["broker", "topic", "partition", "api", "count", "error"])
        }
    }

    // MARK: scalars

    /// `[low, high]` seconds.
    private func range(_ node: Node, path: String) throws -> ClosedRange<Double> {
        guard case .sequence(let items) = node, items.count == 2 else {
            throw SuiteError(path: path, message: "expected [low, high] in seconds, such as [3, 8]")
        }
        let low = try yaml.number(items[0], path: "\(path)[0]", in: 0...86_400)
        let high = try yaml.number(items[1], path: "\(path)[1]", in: 0...86_400)
        guard low <= high else { throw SuiteError(path: path, message: "low (\(format(low))) is above high (\(format(high)))") }
        return low...high
    }
}
