import Foundation
import SluiceDrivers
import SluiceWorkload
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The broker of a Kafka suite (`source: kafka` or `sink: kafka`): `sluice dev kafka` (librdkafka's
/// mock cluster) as a child process of its own, as users run it, with its topics created at start,
/// and faults sent over its control socket. It outlives the cluster: the checks read the result
/// topic from it after the workers have stopped.
///
/// The mock elects nothing by itself: a broker taken down keeps leading its partitions and
/// coordinating its transactional ids, and clients would wait for it. So `brokerDown` first moves
/// every partition leader and every transaction and group coordinator the run uses to the brokers
/// that stay up (round robin), as a real cluster's controller would, then takes the broker down.
final class ChaosKafka: Sendable {
    static let inputTopic = "input"
    static let outputTopic = "results"
    static var progressTopic: String { outputTopic + ".sluice-progress" }

    let brokers: Int
    /// `127.0.0.1:P,…`, one per broker.
    let bootstrap: String
    let controlPath: String
    /// Topic name → partitions.
    let topics: [String: Int]
    /// The keys whose coordinators move with the leaders: the sink's transactional ids
    /// (`sluice.<job>.<topic>.<partition>`) and the source's consumer groups.
    let transactionalIDs: [String]
    let groups: [String]
    private let supervisor: ProcessSupervisor
    private let down = Mutex<Set<Int>>([])

    private init(brokers: Int, bootstrap: String, controlPath: String, topics: [String: Int], transactionalIDs: [String],
                 groups: [String], supervisor: ProcessSupervisor) {
        self.brokers = brokers
        self.bootstrap = bootstrap
        self.controlPath = controlPath
        self.topics = topics
        self.transactionalIDs = transactionalIDs
        self.groups = groups
        self.supervisor = supervisor
    }

    /// Starts `sluice dev kafka --brokers N --topic …` (its log: `logs/kafka.log`) and waits for its
    /// bootstrap file, which it writes once the topics exist and the control socket listens.
    static func start(brokers: Int, topics: [String: Int], job: String, partitions: Int, sinkTopic: String?,
                      logs: String, executable: String?) async throws -> ChaosKafka {
        let supervisor = ProcessSupervisor(logs: logs, executable: executable)
        let tag = "\(getpid())-\(UUID().uuidString.prefix(8).lowercased())"
        // A Unix socket path must stay under 108 bytes: the temporary directory, not --out.
        let control = (NSTemporaryDirectory() as NSString).appendingPathComponent("sluice-chaos-kafka-\(tag).sock")
        let bootFile = (logs as NSString).appendingPathComponent("kafka.bootstrap")
        var arguments = ["dev", "kafka", "--brokers", String(brokers), "--control", control, "--bootstrap-file", bootFile]
        for (name, count) in topics.sorted(by: { $0.key < $1.key }) { arguments += ["--topic", "\(name):\(count)"] }
        try supervisor.start("kafka", arguments)
        for _ in 0..<300 {
            if let text = try? String(contentsOfFile: bootFile, encoding: .utf8), text.hasSuffix("\n") {
                let ids = sinkTopic.map { topic in (0..<partitions).map { "sluice.\(job).\(topic).\($0)" } } ?? []
                return ChaosKafka(brokers: brokers, bootstrap: text.trimmingCharacters(in: .whitespacesAndNewlines), controlPath: control,
                                  topics: topics, transactionalIDs: ids, groups: ["sluice-\(job)", "sluice-metadata"], supervisor: supervisor)
            }
            if !supervisor.isRunning("kafka") { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        supervisor.killAll()
        throw ChaosRefusal("`sluice dev kafka` did not start; see \((logs as NSString).appendingPathComponent("kafka.log"))")
    }

    /// Produces each input file into the same partition of `topic`, one message per line, in order
    /// (idempotent producer: no duplicates on retries), then checks each partition holds exactly
    /// its file's lines, so that Kafka offsets are the files' line numbers and the oracle over the
    /// files is the reference.
    func produce(files: [String], topic: String) throws -> Int {
        // Small batches: the mock keeps each batch as one message set and a fetch returns whole sets,
        // so big batches would hand a consumer 10,000 messages at once however small its fetches.
        let producer = try KafkaProducer(properties: [("bootstrap.servers", bootstrap), ("enable.idempotence", "true"),
                                                      ("linger.ms", "5"), ("batch.num.messages", "200"), ("log_level", "3")])
        var expected: [Int64] = []
        for (p, file) in files.enumerated() {
            let text = try String(contentsOfFile: file, encoding: .utf8)
            var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            if lines.last?.isEmpty == true { lines.removeLast() }
            for line in lines { try producer.produce(topic: topic, partition: Int32(p), key: nil, value: Array(line.utf8)) }
            expected.append(Int64(lines.count))
        }
        try producer.flush(timeoutMs: 120_000)
        let consumer = try KafkaConsumer(properties: [("bootstrap.servers", bootstrap), ("log_level", "3")], topic: topic, group: "sluice-chaos")
        for (p, count) in expected.enumerated() {
            let marks = try consumer.watermarks(partition: p, timeoutMs: 15_000)
            guard marks.low == 0, marks.high == count else {
                throw ChaosRefusal("\(topic)[\(p)] holds offsets \(marks.low)..<\(marks.high) after producing \(count) lines")
            }
        }
        return Int(expected.reduce(0, +))
    }

    /// Sends one control command; an answer other than `ok` is thrown.
    @discardableResult
    func send(_ command: String) throws -> String {
        let answer = try KafkaMockControlServer.send(command, to: controlPath, timeoutSeconds: 10)
        guard answer == "ok" else { throw ChaosRefusal("sluice dev kafka refused `\(command)`: \(answer)") }
        return command
    }

    /// Every partition leader and coordinator moved to the brokers that stay up, then `broker` down.
    func brokerDown(_ broker: Int) -> [String] {
        let downNow = down.withLock { $0 }
        let up = (1...brokers).filter { $0 != broker && !downNow.contains($0) }
        guard !up.isEmpty else { return ["no broker would stay up; broker \(broker) left up"] }
        var moves = 0
        var failures: [String] = []
        func run(_ command: String) {
            do {
                try send(command)
                moves += 1
            } catch {
                failures.append("\(error)")
            }
        }
        var i = 0
        for (topic, count) in topics.sorted(by: { $0.key < $1.key }) {
            for p in 0..<count {
                run("leader \(topic) \(p) \(up[i % up.count])")
                i += 1
            }
        }
        for id in transactionalIDs {
            run("coordinator transaction \(id) \(up[i % up.count])")
            i += 1
        }
        for group in groups {
            run("coordinator group \(group) \(up[i % up.count])")
            i += 1
        }
        var notes = ["moved \(moves) partition leaders and coordinators to broker\(up.count == 1 ? "" : "s") \(up.map(String.init).joined(separator: ", "))"]
        notes += failures.prefix(3)
        do {
            try send("broker-down \(broker)")
            _ = down.withLock { $0.insert(broker) }
            notes.append("broker \(broker) down")
        } catch {
            notes.append("could not take broker \(broker) down: \(error)")
        }
        return notes
    }

    func brokerUp(_ broker: Int) -> [String] {
        do {
            try send("broker-up \(broker)")
            _ = down.withLock { $0.remove(broker) }
            return ["broker \(broker) up (leaders stay where they were moved)"]
        } catch {
            return ["could not bring broker \(broker) up: \(error)"]
        }
    }

    func leader(topic: String, partition: Int, broker: Int) -> [String] {
        do {
            try send("leader \(topic) \(partition) \(broker)")
            return ["leader of \(topic)[\(partition)] moved to broker \(broker)"]
        } catch {
            return ["\(error)"]
        }
    }

    func requestErrors(api: KafkaAPI, count: Int, error: KafkaRetriableError) -> [String] {
        do {
            try send("request-errors \(api.key) \(count) \(error.code)")
            return ["the next \(count) \(api.rawValue) requests (API key \(api.key)) fail with \(error.rawValue) (\(error.code))"]
        } catch {
            return ["\(error)"]
        }
    }

    /// SIGTERM (the broker removes its socket and bootstrap file), then SIGKILL if need be.
    func shutDown() { supervisor.terminateAll() }
}
