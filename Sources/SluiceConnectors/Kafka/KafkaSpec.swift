import Foundation
import SluiceCore

/// `kafka://HOST:PORT[,HOST:PORT…]/TOPIC[?name=value&…]`, as a source or a sink.
///
/// Sluice's own query words: `stop=latest` (source: end at the last stable offset seen when the
/// job first started), `mode=exactly_once|at_least_once` (sink), `group=NAME` (source: the
/// monitoring consumer group, default `sluice-<job>`), `partitioner=murmur2|consistent_random`
/// (source: how the producers placed keys, for the partition check), `progress_topic=NAME`
/// (exactly-once sink, default `<TOPIC>.sluice-progress`), `key=COLUMN` (the sink of a `kind: changes`
/// job: the column of the row images that keys each change event's message). Every other `name=value` is a
/// librdkafka property (`security.protocol`, `sasl.mechanism`, `ssl.ca.location`, …). Secrets
/// never come from the URI: `sasl.password`, `ssl.key.password` and `ssl.keystore.password` are
/// read from `SLUICE_KAFKA_SASL_PASSWORD`, `SLUICE_KAFKA_SSL_KEY_PASSWORD` and
/// `SLUICE_KAFKA_SSL_KEYSTORE_PASSWORD`, or from the file a `…_file=PATH` word names
/// (`sasl.password_file=/run/secrets/kafka`), and are never logged.
public struct KafkaSpec: Sendable, Equatable {
    public enum Mode: String, Sendable { case exactlyOnce = "exactly_once", atLeastOnce = "at_least_once" }

    public static let scheme = "kafka://"
    public static let usage = "kafka://HOST:PORT[,HOST:PORT…]/TOPIC[?…]"

    public var bootstrap: String
    public var topic: String
    public var stopAtLatest = false
    public var mode = Mode.exactlyOnce
    public var group: String?
    public var partitioner: Partitioner?
    public var progressTopic: String
    /// A `kind: changes` job's sink: the row images' column whose value keys each message.
    public var keyColumn: String?
    /// librdkafka properties from the URI (no secrets).
    public var properties: [(String, String)] = []

    /// Properties whose values are secrets, and the environment variable each is read from.
    static let secrets = [
        "sasl.password": "SLUICE_KAFKA_SASL_PASSWORD",
        "ssl.key.password": "SLUICE_KAFKA_SSL_KEY_PASSWORD",
        "ssl.keystore.password": "SLUICE_KAFKA_SSL_KEYSTORE_PASSWORD",
    ]

    public static func claims(_ uri: String) -> Bool { uri.hasPrefix(scheme) }

    public init(uri: String) throws {
        guard uri.hasPrefix(KafkaSpec.scheme) else { throw SourceError("'\(uri)' is not a Kafka URI; write \(KafkaSpec.usage)") }
        let rest = uri.dropFirst(KafkaSpec.scheme.count)
        let (path, query) = rest.firstIndex(of: "?").map { (rest[..<$0], rest[rest.index(after: $0)...]) } ?? (rest, "")
        guard let slash = path.firstIndex(of: "/") else {
            throw SourceError("Kafka URI '\(uri)' names no topic; write \(KafkaSpec.usage)")
        }
        bootstrap = String(path[..<slash])
        topic = String(path[path.index(after: slash)...])
        let servers = bootstrap.split(separator: ",", omittingEmptySubsequences: false)
        guard !bootstrap.isEmpty, servers.allSatisfy({ server in
            guard let colon = server.lastIndex(of: ":"), let port = Int(server[server.index(after: colon)...]) else { return false }
            return colon > server.startIndex && (1...65_535).contains(port)
        }) else {
            throw SourceError("Kafka URI '\(uri)': bootstrap servers '\(bootstrap)' must be HOST:PORT[,HOST:PORT…]")
        }
        guard KafkaSpec.isTopicName(topic) else {
            throw SourceError("Kafka URI '\(uri)': topic '\(topic)' is not a Kafka topic name (1–249 of letters, digits, '.', '_', '-')")
        }
        progressTopic = topic + ".sluice-progress"
        for pair in query.split(separator: "&") {
            guard let eq = pair.firstIndex(of: "="), eq > pair.startIndex else {
                throw SourceError("Kafka URI '\(KafkaSpec.redacted(uri))': '\(pair)' is not name=value")
            }
            let name = String(pair[..<eq]), value = String(pair[pair.index(after: eq)...])
            switch name {
            case "stop":
                guard value == "latest" else { throw SourceError("Kafka URI: stop=\(value): the one bound is stop=latest (or no stop: read for ever)") }
                stopAtLatest = true
            case "mode":
                guard let mode = Mode(rawValue: value) else {
                    throw SourceError("Kafka URI: mode=\(value): expected exactly_once or at_least_once")
                }
                self.mode = mode
            case "group": group = value
            case "partitioner":
                switch value {
                case "murmur2", "murmur2_random": partitioner = .murmur2
                case "consistent_random", "consistent": partitioner = .consistentRandom
                default: throw SourceError("Kafka URI: partitioner=\(value): expected murmur2 (the Java client's) or consistent_random (librdkafka's default)")
                }
            case "key":
                guard !value.isEmpty else { throw SourceError("Kafka URI: key= names the column that keys change events; it is empty") }
                keyColumn = value
            case "progress_topic":
                guard KafkaSpec.isTopicName(value) else { throw SourceError("Kafka URI: progress_topic=\(value) is not a topic name") }
                progressTopic = value
            case let secret where KafkaSpec.secrets[secret] != nil:
                throw SourceError("Kafka URI: \(secret) must not be written in a URI (it would be logged and stored); set \(KafkaSpec.secrets[secret] ?? "") or \(secret)_file=PATH")
            case let file where file.hasSuffix("_file") && KafkaSpec.secrets[String(file.dropLast(5))] != nil:
                let property = String(file.dropLast(5))
                guard let text = try? String(contentsOfFile: value, encoding: .utf8) else {
                    throw SourceError("Kafka URI: \(file)=\(value): cannot read the file")
                }
                properties.append((property, text.trimmingCharacters(in: .newlines)))
            case "bootstrap.servers", "transactional.id", "group.id", "isolation.level", "enable.auto.commit":
                throw SourceError("Kafka URI: \(name) is set by Sluice; drop it from the URI")
            default:
                properties.append((name, value))
            }
        }
        for (property, variable) in KafkaSpec.secrets.sorted(by: { $0.key < $1.key })
        where !properties.contains(where: { $0.0 == property }) {
            if let value = ProcessInfo.processInfo.environment[variable], !value.isEmpty { properties.append((property, value)) }
        }
    }

    public static func == (a: KafkaSpec, b: KafkaSpec) -> Bool {
        a.bootstrap == b.bootstrap && a.topic == b.topic && a.stopAtLatest == b.stopAtLatest && a.mode == b.mode
            && a.group == b.group && a.partitioner == b.partitioner && a.progressTopic == b.progressTopic && a.keyColumn == b.keyColumn
            && a.properties.map(\.0) == b.properties.map(\.0) && a.properties.map(\.1) == b.properties.map(\.1)
    }

    /// librdkafka's configuration for this URI's clients.
    public var clientProperties: [(String, String)] {
        [("bootstrap.servers", bootstrap), ("log_level", "4")] + properties
    }

    static func isTopicName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 249 && name != "." && name != ".."
            && name.utf8.allSatisfy { $0 == 46 || $0 == 95 || $0 == 45 || (48...57).contains($0) || (65...90).contains($0) || (97...122).contains($0) }
    }

    /// The URI for messages: it holds no secrets by construction, but a `…password=` someone
    /// wrote anyway is hidden.
    public static func redacted(_ uri: String) -> String {
        guard uri.contains("password") else { return uri }
        return uri.split(separator: "&").map { $0.contains("password=") ? "\($0.prefix { $0 != "=" })=***" : String($0) }.joined(separator: "&")
    }
}
