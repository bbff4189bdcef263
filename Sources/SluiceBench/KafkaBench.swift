import Foundation
import SluiceConnectors
import SluiceDrivers
import SluiceWorkload

/// `sluice bench --only kafka`: against librdkafka's mock cluster in this process (an in-memory
/// broker on loopback: its figures say what Sluice costs on top of librdkafka, not what a real
/// cluster's network and disks allow). The mock keeps about 4 MB per partition, hence 8 × 25,000
/// orders.
struct KafkaBench {
    let repeats: Int
    let root: String
    let only: String?
    static let orders = 200_000

    func wants(_ names: String) -> Bool { only.map { names.contains($0) } ?? true }

    func run() throws {
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let input = (root as NSString).appendingPathComponent("orders")
        try? FileManager.default.removeItem(atPath: input)
        try PartitionFiles.write(WorkloadConfig(seed: 13, events: Self.orders, partitions: 8), workload: .orders, format: .json, to: input)
        let revenueJob = (root as NSString).appendingPathComponent("orders-revenue.yaml")
        try OrderGenerator.revenueJob.write(toFile: revenueJob, atomically: true, encoding: .utf8)
        if wants("kafka.source.events_per_s kafka.source.plain_consumer_events_per_s") { try source(input: input, job: revenueJob) }
        if wants("kafka.sink.rows_per_s") { try sink(input: input) }
        if wants("kafka.lag_p99_ms kafka.lag_p50_ms") { try lag() }
    }

    /// The orders files' records in `topic` (8 partitions), partition by partition.
    static func produce(_ input: String, to cluster: KafkaMockCluster, topic: String) throws -> Int {
        try cluster.createTopic(topic, partitions: 8)
        return try KafkaTopicLoader.load(directory: input, bootstrap: cluster.bootstrapServers, topic: topic)
    }

    // MARK: source: a topic of JSON orders through the tumbling window into SQLite, one lane

    private func source(input: String, job: String) throws {
        let cluster = try KafkaMockCluster(brokers: 3)
        let count = try Self.produce(input, to: cluster, topic: "orders")
        // A plain librdkafka consumer (read_committed, the whole topic assigned, messages only
        // counted) reading the same messages: the rate Sluice's source is compared with.
        var plain = Double.infinity
        for _ in 0..<repeats {
            let consumer = try KafkaConsumer(properties: [("bootstrap.servers", cluster.bootstrapServers)], topic: "orders", group: "bench-plain")
            _ = try consumer.partitionCount()  // connected before the clock starts
            let start = ContinuousClock.now
            try consumer.assign(partitions: 0..<8)
            var read = 0, ends = 0
            while read < count || ends < 8 {
                let result = try consumer.poll(max: 100_000, timeoutMs: 100) { _ in read += 1 }
                if result.endOffset != nil { ends += 1 }
                guard ContinuousClock.now - start < .seconds(120) else { throw BenchError("the plain consumer read \(read) of \(count) in 120 s") }
            }
            guard read == count else { throw BenchError("the plain consumer read \(read) of \(count) messages") }
            plain = min(plain, (ContinuousClock.now - start).seconds)
        }
        var best = Double.infinity
        for i in 0..<repeats {
            let output = (root as NSString).appendingPathComponent("kafka-source\(i).db")
            defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: output + suffix) } }
            best = min(best, try timedSluice(["run", "--input", "kafka://\(cluster.bootstrapServers)/orders?stop=latest", "--output", "sqlite:\(output)",
                                              "--parallelism", "1", "--checkpoint-interval-ms", "1000", "--quiet", "--job", job], name: "kafka source \(i)"))
        }
        let sluiceRate = Double(count) / best, plainRate = Double(count) / plain
        print("kafka.source.events_per_s: \(Int(sluiceRate)) events/s")
        print("kafka.source.plain_consumer_events_per_s: \(Int(plainRate)) events/s")
        print("kafka.source.ratio: \(String(format: "%.2f", sluiceRate / plainRate))")
    }

    // MARK: sink: one result row per order (1 s windows keyed by order id), exactly once vs at least once

    static let perOrderJob = """
        name: orders-per-id
        format: json
        schema:
          - {name: order_id, type: string}
          - {name: amount, type: decimal, scale: 2, nullable: true}
          - {name: ts, type: timestamp}
        key: order_id
        partition_check: false
        time: ts
        watermark: {max_out_of_orderness_ms: 2000}
        window: {kind: tumbling, size_ms: 1000}
        aggregates: [count, {sum: amount}]
        table: orders_per_id
        checkpoint: {interval_ms: 1000}
        """

    private func sink(input: String) throws {
        let job = (root as NSString).appendingPathComponent("orders-per-id.yaml")
        try Self.perOrderJob.write(toFile: job, atomically: true, encoding: .utf8)
        let cluster = try KafkaMockCluster(brokers: 3)
        var best: [String: Double] = [:]
        var rows: [String: Int] = [:]
        for i in 0..<repeats {
            // Alternate the two so that drift in the machine's load hits both alike.
            for mode in ["exactly_once", "at_least_once"] {
                let topic = "rows-\(mode)-\(i)"
                try cluster.createTopic(topic, partitions: 8)
                try cluster.createTopic("\(topic).sluice-progress", partitions: 1)
                let state = (root as NSString).appendingPathComponent("\(topic).db")
                defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: state + suffix) } }
                let uri = "kafka://\(cluster.bootstrapServers)/\(topic)?mode=\(mode)"
                let seconds = try timedSluice(["run", "--input", "file:\(input)", "--output", uri, "--state", state, "--parallelism", "1",
                                               "--checkpoint-interval-ms", "1000", "--quiet", "--job", job], name: "kafka sink \(mode) \(i)")
                rows[mode] = try KafkaTopicReader.read(spec: try KafkaSpec(uri: uri), outcomes: nil) { _ in 1 }.count
                best[mode] = min(best[mode] ?? .infinity, seconds)
            }
        }
        let exactly = Double(rows["exactly_once"] ?? 0) / (best["exactly_once"] ?? 1)
        let atLeast = Double(rows["at_least_once"] ?? 0) / (best["at_least_once"] ?? 1)
        note("bench: kafka sink: \(rows["exactly_once"] ?? 0) rows exactly once, \(rows["at_least_once"] ?? 0) at least once")
        print("kafka.sink.exactly_once.rows_per_s: \(Int(exactly)) rows/s")
        print("kafka.sink.at_least_once.rows_per_s: \(Int(atLeast)) rows/s")
        print("kafka.sink.ratio: \(String(format: "%.2f", exactly / atLeast))")
    }

    // MARK: lag: produce → visible in the result topic, at a steady 50,000 events/s

    static let lagJob = """
        name: orders-lag
        format: json
        schema:
          - {name: order_id, type: string}
          - {name: customer, type: string}
          - {name: amount, type: decimal, scale: 2}
          - {name: ts, type: timestamp}
        key: customer
        time: ts
        watermark: {max_out_of_orderness_ms: 0}
        window: {kind: tumbling, size_ms: 1000}
        aggregates: [count, {sum: amount}]
        table: orders_lag
        checkpoint: {interval_ms: 1000}
        """

    /// Events carry their produce time as event time; a window [W, W+1 s) is complete when the
    /// producer passes W+1 s, so a result row's lag is the time it became visible minus W+1 s:
    /// the watermark, the checkpoint interval (results wait for the commit) and the transaction.
    private func lag() throws {
        let cluster = try KafkaMockCluster(brokers: 3)
        try cluster.createTopic("live", partitions: 8)
        try cluster.createTopic("live-results", partitions: 8)
        try cluster.createTopic("live-results.sluice-progress", partitions: 1)
        let job = (root as NSString).appendingPathComponent("orders-lag.yaml")
        try Self.lagJob.write(toFile: job, atomically: true, encoding: .utf8)
        let state = (root as NSString).appendingPathComponent("lag.db")
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: state + suffix) } }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        process.arguments = ["run", "--input", "kafka://\(cluster.bootstrapServers)/live", "--output", "kafka://\(cluster.bootstrapServers)/live-results",
                             "--state", state, "--parallelism", "1", "--checkpoint-interval-ms", "1000", "--quiet", "--job", job]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.terminate(); process.waitUntilExit() } }

        // The reader: every result row's visibility time, by window start.
        let seen = LagSamples()
        let reading = Thread {
            guard let consumer = try? KafkaConsumer(properties: [("bootstrap.servers", cluster.bootstrapServers)], topic: "live-results", group: "bench-lag"),
                  let partitions = try? consumer.partitionCount() else { return }
            var readers: [KafkaConsumer] = []
            for p in 0..<partitions {
                guard let c = try? KafkaConsumer(properties: [("bootstrap.servers", cluster.bootstrapServers)], topic: "live-results", group: "bench-lag"),
                      (try? c.assign(partition: p, offset: 0)) != nil else { return }
                readers.append(c)
            }
            while !seen.stopped {
                for c in readers {
                    _ = try? c.poll(max: 10_000, timeoutMs: 5) { message in
                        guard let value = message.value, let start = LagSamples.windowStart(value) else { return }
                        seen.add(visibleAtMs: LagSamples.nowMs(), windowEndMs: start + 1_000)
                    }
                }
            }
        }
        reading.start()

        let producer = try KafkaProducer(properties: [("bootstrap.servers", cluster.bootstrapServers), ("partitioner", "murmur2_random"),
                                                      ("linger.ms", "5")])
        let rate = 50_000, seconds = 12
        let began = ContinuousClock.now
        var sent = 0
        while ContinuousClock.now - began < .seconds(seconds) {
            let due = Int((ContinuousClock.now - began).seconds * Double(rate))
            while sent < due {
                let now = LagSamples.nowMs()
                let customer = "cust-\(sent % 500)"
                let value = #"{"order_id":"o-\#(sent)","customer":"\#(customer)","amount":"1.25","ts":\#(now)}"#
                try producer.produce(topic: "live", key: Array(customer.utf8), value: Array(value.utf8))
                sent += 1
            }
            usleep(1_000)
        }
        try producer.flush(timeoutMs: 30_000)
        let producedUntil = LagSamples.nowMs()
        Thread.sleep(forTimeInterval: 4)
        seen.stop()
        // Windows that ended while the producer ran (later ones never saw the watermark pass).
        let lags = seen.lags(windowEndBefore: producedUntil - 1_000, after: LagSamples.nowMs() - Int64(seconds + 4) * 1_000 + 2_000)
        guard lags.count > 100 else { throw BenchError("kafka lag: only \(lags.count) result rows seen (sent \(sent) events)") }
        let sorted = lags.sorted()
        note("bench: kafka lag: \(sent) events at \(rate)/s for \(seconds) s, \(sorted.count) result rows measured")
        print("kafka.lag_p50_ms: \(sorted[sorted.count / 2]) ms")
        print("kafka.lag_p99_ms: \(sorted[min(sorted.count - 1, sorted.count * 99 / 100)]) ms")
    }
}

/// Result rows' visibility, collected by the reader thread.
final class LagSamples: @unchecked Sendable {
    private let lock = NSLock()
    private var samples: [(windowEnd: Int64, lag: Int64)] = []
    private var isStopped = false

    var stopped: Bool { lock.withLock { isStopped } }
    func stop() { lock.withLock { isStopped = true } }

    func add(visibleAtMs: Int64, windowEndMs: Int64) {
        lock.withLock { samples.append((windowEndMs, visibleAtMs - windowEndMs)) }
    }

    func lags(windowEndBefore end: Int64, after start: Int64) -> [Int64] {
        lock.withLock { samples.filter { $0.windowEnd < end && $0.windowEnd > start }.map(\.lag) }
    }

    static func nowMs() -> Int64 { Int64((Date().timeIntervalSince1970 * 1_000).rounded(.down)) }

    /// `"window_start_ms":N` from a result message.
    static func windowStart(_ value: UnsafeRawBufferPointer) -> Int64? {
        let text = String(decoding: value, as: UTF8.self)
        guard let range = text.range(of: #""window_start_ms":"#) else { return nil }
        return Int64(text[range.upperBound...].prefix { $0.isNumber })
    }
}
