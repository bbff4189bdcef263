import ArgumentParser
import Foundation
import SluiceDrivers

/// `sluice kafka …`: tools for a real Kafka or Redpanda cluster.
struct KafkaCommands: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kafka", abstract: "Kafka cluster tools.", subcommands: [KafkaCheck.self])
}

/// `sluice kafka check --bootstrap HOST:PORT[,…] [--topic T] [--property name=value …]`: does this
/// cluster give the transactional guarantees Sluice's exactly-once sink relies on? Exit 0 when
/// all hold, 1 when one is missing, 2 for bad arguments, an unreachable bootstrap or a missing topic.
struct KafkaCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check a Kafka cluster's transactions (isolation, abort on takeover, zombie fencing) with a read_committed consumer.",
        discussion: """
            Writes a few small records, in transactions with unique transactional ids, to the topic (which must exist; \
            use a dedicated topic of 4 partitions or more, one per case). Prints one PASS/FAIL line per check, a summary, \
            one line per guarantee (PRESENT, or MISSING and what that means for Sluice) and a verdict. \
            Exit 0 when every guarantee holds, 1 when any is missing, 2 for bad arguments, an unreachable bootstrap or a missing topic.
            """)

    @Option(help: "Bootstrap servers, HOST:PORT[,HOST:PORT…].") var bootstrap: String
    @Option(help: "The topic to write test records to; it must exist.") var topic: String = "sluice-check"
    @Option(name: .customLong("property"), help: "A librdkafka property, name=value (security.protocol, sasl.mechanism, …); repeatable.")
    var properties: [String] = []
    @Option(help: "Seconds each Kafka operation (metadata, init, commit, abort, flush) may take.") var timeout: Int = 15

    func validate() throws {
        guard (1...600).contains(timeout) else { throw ValidationError("--timeout must be 1 to 600 seconds, got \(timeout)") }
        let servers = bootstrap.split(separator: ",", omittingEmptySubsequences: false)
        for server in servers {
            guard let colon = server.lastIndex(of: ":"), colon != server.startIndex,
                  let port = Int(server[server.index(after: colon)...]), (1...65535).contains(port) else {
                throw ValidationError("--bootstrap must be HOST:PORT[,HOST:PORT…] (for example --bootstrap localhost:9092), got '\(bootstrap)'")
            }
        }
        do { try KafkaMockCommand.checkTopicName(topic) } catch { throw ValidationError("--topic: \(error)") }
        for property in properties {
            guard let equals = property.firstIndex(of: "="), equals != property.startIndex else {
                // Only the name part is echoed: the value may be a secret.
                throw ValidationError("--property must be name=value (for example --property security.protocol=SSL), got '\(property.prefix { $0 != "=" })…'")
            }
            let name = String(property[..<equals])
            guard !["bootstrap.servers", "metadata.broker.list"].contains(name) else {
                throw ValidationError("--property \(name): give the servers with --bootstrap instead")
            }
        }
    }

    func run() throws {
        let pairs = properties.compactMap { property -> (String, String)? in
            guard let equals = property.firstIndex(of: "=") else { return nil }
            return (String(property[..<equals]), String(property[property.index(after: equals)...]))
        }
        var options = KafkaClusterCheck.Options(bootstrap: bootstrap, topic: topic, properties: pairs)
        options.operationTimeoutMs = Int32(timeout * 1000)
        let check = KafkaClusterCheck(options: options)
        let report: KafkaClusterCheck.Report
        do {
            report = try check.run()
        } catch {
            throw userError(error)
        }
        for line in report.lines { print(line) }
        if report.exitCode != 0 { throw ExitCode(report.exitCode) }
    }
}
