import Foundation
import Synchronization

/// A test-only log of transaction outcomes (`SLUICE_KAFKA_TXN_LOG=PATH`), shared by every process
/// of a test, that applies Kafka's transaction rules where librdkafka's mock cluster applies none:
/// - `init`: a producer's `init_transactions` fences every older producer of its transactional id;
/// - a fenced producer's commit fails (the sink stops, as Kafka's PRODUCER_FENCED stops it);
/// - read_committed: only messages of transactions logged `commit` are visible (aborted and open
///   ones are not). Every message carries its transaction in the `sluice-txn` header.
/// Lines: `init TXID INSTANCE`, `commit|abort|fenced TXID/INSTANCE/N`. An exclusive lock on the
/// file makes "check fencing, log the commit" one step against another producer's `init`, as the
/// broker's transaction coordinator serializes EndTxn and InitProducerId of one id; the producer
/// flushes its records to the broker before, and tells the broker to commit after (a commit logged
/// before a newer init is one Kafka would complete before answering that init). The lock is held
/// only for reading and appending the file.
public final class KafkaTransactionOutcomes: Sendable {
    public static let environmentVariable = "SLUICE_KAFKA_TXN_LOG"
    public static let header = "sluice-txn"
    public let path: String
    private static let instances = Atomic<Int>(0)

    public init(path: String) { self.path = path }

    public static func fromEnvironment() -> KafkaTransactionOutcomes? {
        guard let path = ProcessInfo.processInfo.environment[environmentVariable], !path.isEmpty else { return nil }
        return KafkaTransactionOutcomes(path: path)
    }

    /// A name for one producer handle, unique across the test's processes.
    static func newInstance() -> String {
        "\(getpid())-\(instances.add(1, ordering: .relaxed).newValue)"
    }

    /// Runs `body` holding the file's lock; `append` adds a line.
    func locked<T>(_ body: (_ append: (String) throws -> Void) throws -> T) throws -> T {
        let fd = open(path, O_RDWR | O_APPEND | O_CREAT, 0o644)
        guard fd >= 0 else { throw SinkError("\(path): cannot open the transaction-outcome log (errno \(errno))") }
        defer { close(fd) }
        guard flock(fd, LOCK_EX) == 0 else { throw SinkError("\(path): cannot lock the transaction-outcome log") }
        defer { flock(fd, LOCK_UN) }
        return try body { line in
            let bytes = Array((line + "\n").utf8)
            guard bytes.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == bytes.count else {
                throw SinkError("\(path): cannot append to the transaction-outcome log")
            }
        }
    }

    private func lines() -> [[Substring]] {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").map { $0.split(separator: " ") }
    }

    /// True when a producer other than `instance` has initialized `transactionalID` since
    /// `instance` did (call while holding the lock).
    func isFenced(_ transactionalID: String, instance: String) -> Bool {
        let last = lines().last { $0.count == 3 && $0[0] == "init" && $0[1] == transactionalID }
        return last.map { $0[2] != instance } ?? false
    }

    /// The transactions (`TXID/INSTANCE/N`, the header's value) that committed.
    public func committed() -> Set<String> {
        Set(lines().compactMap { $0.count == 2 && $0[0] == "commit" ? String($0[1]) : nil })
    }

    /// Counts of the logged outcomes, for reports: `init`, `commit`, `abort`, `fenced`.
    public func counts() -> [String: Int] {
        lines().reduce(into: [:]) { counts, line in if let kind = line.first { counts[String(kind), default: 0] += 1 } }
    }
}
