import ArgumentParser
import Foundation
import SluiceDrivers
import UnixSignals

/// `sluice dev …`: tools for development and tests, never for production.
struct Dev: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Development and test tools (not for production).", subcommands: [DevKafka.self, DevKafkaFault.self])
}

/// `sluice dev kafka --brokers 3 --topic NAME:PARTITIONS …`: librdkafka's mock cluster in this
/// process until SIGTERM or SIGINT, with a control socket for faults.
///
/// Standard output, once the cluster, its topics and the control socket are ready:
///     bootstrap: 127.0.0.1:PORT,127.0.0.1:PORT,…
///     control: /path/of/the/control.sock
/// `--bootstrap-file` gets the bare list (`127.0.0.1:PORT,…` and a newline), written atomically at
/// the same moment. Both files are removed on a clean stop (exit 0).
struct DevKafka: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kafka",
        abstract: "Run librdkafka's in-memory mock Kafka cluster for development and tests (not for production).",
        discussion: """
            Prints `bootstrap: HOST:PORT,…` then `control: PATH` on standard output, and runs until SIGTERM or SIGINT. \
            The control socket takes one command per line, each answered `ok` or `error: …`: \
            \(KafkaMockCommand.usage). `sluice dev kafka-fault --control PATH COMMAND…` sends one. \
            The mock keeps everything in memory and enforces neither transactional isolation nor fencing.
            """)

    @Option(help: "Number of brokers (ids 1…N).") var brokers: Int = 3
    @Option(name: .customLong("topic"), help: "A topic to create, NAME:PARTITIONS (repeatable).") var topics: [String] = []
    @Option(help: "Path of the control socket (Unix). Default: sluice-dev-kafka-PID.sock in the temporary directory.")
    var control: String?
    @Option(help: "Also write the bootstrap list to this file when ready (removed on stop).") var bootstrapFile: String?

    func validate() throws {
        guard (1...32).contains(brokers) else { throw ValidationError("--brokers must be 1 to 32, got \(brokers)") }
        var seen = Set<String>()
        for topic in topics {
            let (name, _) = try DevKafka.parseTopic(topic)
            guard seen.insert(name).inserted else { throw ValidationError("--topic \(name) is given twice; give each topic once") }
        }
        if let control, control.isEmpty || control.utf8.count > 107 {
            throw ValidationError("--control must be a path of 1 to 107 bytes (a Unix socket's limit), got '\(control)'")
        }
        if let bootstrapFile, bootstrapFile.isEmpty { throw ValidationError("--bootstrap-file must be a path") }
    }

    /// `orders:8` → ("orders", 8).
    static func parseTopic(_ text: String) throws -> (String, Int) {
        guard let colon = text.lastIndex(of: ":"), let partitions = Int(text[text.index(after: colon)...]),
              (1...10_000).contains(partitions) else {
            throw ValidationError("--topic must be NAME:PARTITIONS with 1 to 10000 partitions (for example --topic orders:8), got '\(text)'")
        }
        let name = String(text[..<colon])
        do { try KafkaMockCommand.checkTopicName(name) } catch { throw ValidationError("--topic: \(error)") }
        return (name, partitions)
    }

    func run() async throws {
        // Trap first: a SIGTERM sent as soon as the bootstrap line appears must stop us cleanly.
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        let controlPath = control ?? (NSTemporaryDirectory() as NSString).appendingPathComponent("sluice-dev-kafka-\(getpid()).sock")
        let mock: KafkaMockControl
        let server: KafkaMockControlServer
        do {
            mock = KafkaMockControl(cluster: try KafkaMockCluster(brokers: brokers))
            for topic in topics {
                let (name, partitions) = try DevKafka.parseTopic(topic)
                let answer = mock.apply(.createTopic(name: name, partitions: partitions))
                guard answer == "ok" else { throw ValidationError("--topic \(topic): \(answer)") }
            }
            server = try KafkaMockControlServer(path: controlPath, control: mock)
        } catch {
            throw userError(error)
        }
        server.start()
        let bootstrap = mock.cluster.bootstrapServers
        note("""
            sluice dev kafka: an in-memory TEST broker (librdkafka's mock cluster, \(brokers) broker\(brokers == 1 ? "" : "s")), NOT for production: \
            it keeps everything in memory and loses it on exit, and it enforces neither transactional isolation nor fencing. \
            Stop it with SIGTERM or Ctrl-C.
            """)
        if let bootstrapFile {
            do {
                let temporary = bootstrapFile + ".tmp-\(getpid())"
                try Data((bootstrap + "\n").utf8).write(to: URL(fileURLWithPath: temporary))
                guard rename(temporary, bootstrapFile) == 0 else {
                    throw ValidationError("cannot write --bootstrap-file \(bootstrapFile): \(String(cString: strerror(errno)))")
                }
            } catch {
                server.stop()
                throw userError(error)
            }
        }
        // Unbuffered writes: a reader polling a redirected stdout sees the lines at once.
        FileHandle.standardOutput.write(Data("bootstrap: \(bootstrap)\ncontrol: \(controlPath)\n".utf8))
        for await signal in signals {
            note("sluice dev kafka: \(signal): stopping")
            break
        }
        server.stop()
        if let bootstrapFile { unlink(bootstrapFile) }
        withExtendedLifetime(mock) {}
    }
}

/// `sluice dev kafka-fault --control PATH COMMAND…`: sends one command to a running `sluice dev
/// kafka`. Exit 0 on `ok`, 1 when the broker refused it (`error: …` on stderr), 2 for a malformed
/// command or an unreachable control socket.
struct DevKafkaFault: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kafka-fault",
        abstract: "Send one fault command to a running `sluice dev kafka`.",
        discussion: "Commands: \(KafkaMockCommand.usage). Broker ids are 1…N; APIKEY is a Kafka API key (0 Produce, 1 Fetch, 3 Metadata, …).")

    @Option(help: "The control socket `sluice dev kafka` printed (`control: PATH`).") var control: String
    // Passthrough: an error code may be negative (librdkafka's local errors), which is not a flag.
    @Argument(parsing: .captureForPassthrough, help: "The command, e.g. broker-down 2.") var command: [String] = []

    func validate() throws {
        do { _ = try KafkaMockCommand(parsing: command.joined(separator: " ")) } catch { throw ValidationError("\(error)") }
    }

    func run() throws {
        let answer: String
        do {
            answer = try KafkaMockControlServer.send(command.joined(separator: " "), to: control)
        } catch {
            throw userError(error)
        }
        guard answer == "ok" else {
            note(answer)
            throw ExitCode(1)
        }
        print(answer)
    }
}
