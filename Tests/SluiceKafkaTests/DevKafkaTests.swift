import Foundation
import SluiceDrivers
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `sluice dev kafka` as a child process: its bootstrap line, clients through it, faults through
/// the control socket and `sluice dev kafka-fault`, a clean stop on SIGTERM; bad flags exit 2.
@Suite struct DevKafkaTests {
    @Test func controlCommandsParse() throws {
        #expect(try KafkaMockCommand(parsing: "broker-down 2") == .brokerDown(2))
        #expect(try KafkaMockCommand(parsing: " broker-up\t1 ") == .brokerUp(1))
        #expect(try KafkaMockCommand(parsing: "leader orders 3 2") == .leader(topic: "orders", partition: 3, broker: 2))
        #expect(try KafkaMockCommand(parsing: "request-errors 0 3 7") == .requestErrors(apiKey: 0, count: 3, error: 7))
        #expect(try KafkaMockCommand(parsing: "create-topic more 2") == .createTopic(name: "more", partitions: 2))
        #expect(try KafkaMockCommand(parsing: "coordinator transaction sluice.job.out.3 2") == .coordinator(type: "transaction", key: "sluice.job.out.3", broker: 2))
        for bad in ["", "reboot", "broker-down", "broker-down x", "broker-down 0", "leader orders 0", "request-errors 0 0 7",
                    "create-topic bad/name 2", "create-topic ok 0",
                    "coordinator txn k 1", "coordinator group k", "coordinator group k 0"] {
            #expect(throws: KafkaMockCommand.ParseError.self, "'\(bad)'") { try KafkaMockCommand(parsing: bad) }
        }
    }

    @Test(.timeLimit(.minutes(2))) func aChildBrokerServesClientsTakesFaultsAndStopsOnSIGTERM() async throws {
        let scratch = try KafkaScratch("dev")
        defer { scratch.remove() }
        let control = scratch.at("control.sock"), bootFile = scratch.at("bootstrap")
        let child = try SluiceChild(["dev", "kafka", "--brokers", "3", "--topic", "events:4", "--topic", "other:1",
                                     "--control", control, "--bootstrap-file", bootFile], scratch: scratch, label: "broker")
        defer { if child.process.isRunning { child.signal(SIGKILL) } }
        let line = await child.line(startingWith: "bootstrap: ")
        let boot = try #require(line, "no bootstrap line: \(child.stdout) \(child.stderr)")
        #expect(boot.split(separator: ",").count == 3 && boot.split(separator: ",").allSatisfy { $0.hasPrefix("127.0.0.1:") })
        #expect(child.stdout.split(separator: "\n").first == "bootstrap: \(boot)"[...])
        #expect(child.stdout.contains("control: \(control)\n"))
        #expect(SluiceChild.read(bootFile) == boot + "\n")
        #expect(child.stderr.contains("NOT for production"))

        try produce(boot, count: 40, key: "k")
        #expect(try consumeAll(boot) == 40)

        for (command, answer) in [("broker-down 1", "ok"), ("broker-up 1", "ok"), ("leader events 0 2", "ok"),
                                  ("request-errors 0 1 7", "ok"), ("create-topic more 2", "ok"),
                                  ("broker-down 4", "error: no broker 4: brokers are 1…3"), ("leader nope 0 1", "error: no topic 'nope'")] {
            #expect(try KafkaMockControlServer.send(command, to: control) == answer, "\(command)")
        }
        // Clients go on after the leader move and a failed Produce (retried).
        try produce(boot, count: 10, key: "j")
        #expect(try consumeAll(boot) == 50)

        let fault = try await runSluice(["dev", "kafka-fault", "--control", control, "leader", "events", "1", "3"], scratch: scratch, label: "fault")
        #expect(fault.status == 0 && fault.stdout == "ok\n", "\(fault)")
        let refused = try await runSluice(["dev", "kafka-fault", "--control", control, "broker-down", "9"], scratch: scratch, label: "refused")
        #expect(refused.status == 1 && refused.stderr.contains("error: no broker 9"), "\(refused)")

        child.signal(SIGTERM)
        let status = await child.wait(timeout: .seconds(30))
        #expect(status == 0, "\(child.stderr)")
        #expect(!FileManager.default.fileExists(atPath: control))
        #expect(!FileManager.default.fileExists(atPath: bootFile))
    }

    @Test(.timeLimit(.minutes(2))) func badFlagsExit2NamingTheFlag() async throws {
        let scratch = try KafkaScratch("flags")
        defer { scratch.remove() }
        let cases: [([String], String)] = [
            (["dev", "kafka", "--brokers", "0"], "--brokers must be 1 to 32"),
            (["dev", "kafka", "--topic", "orders"], "--topic must be NAME:PARTITIONS"),
            (["dev", "kafka", "--topic", "a:1", "--topic", "a:2"], "--topic a is given twice"),
            (["dev", "kafka", "--topic", "bad/name:2"], "is not valid"),
            (["dev", "kafka", "--control", String(repeating: "x", count: 200)], "--control must be a path of 1 to 107 bytes"),
            (["dev", "kafka-fault", "--control", scratch.at("none.sock"), "reboot"], "unknown command 'reboot'"),
            (["dev", "kafka-fault", "--control", scratch.at("none.sock"), "broker-down", "1"], "cannot connect to the control socket"),
            (["kafka", "check"], "--bootstrap"),
        ]
        for (i, (arguments, message)) in cases.enumerated() {
            let run = try await runSluice(arguments, scratch: scratch, label: "bad\(i)")
            #expect(run.status == 2 && run.stderr.contains(message), "\(arguments): \(run)")
        }
    }

    private func produce(_ boot: String, count: Int, key: String) throws {
        let producer = try KafkaProducer(properties: [("bootstrap.servers", boot), ("log_level", "2")])
        for i in 0..<count { try producer.produce(topic: "events", key: Array("\(key)\(i)".utf8), value: Array("v\(i)".utf8)) }
        try producer.flush(timeoutMs: 30_000)
    }

    /// Every message of the 4 partitions of `events`, each read from 0 to its end.
    private func consumeAll(_ boot: String) throws -> Int {
        var total = 0
        for partition in 0..<4 {
            let consumer = try KafkaConsumer(properties: [("bootstrap.servers", boot), ("log_level", "2")], topic: "events", group: "t")
            let end = try consumer.watermarks(partition: partition).high
            try consumer.assign(partition: partition, offset: 0)
            var seen: Int64 = 0
            let deadline = ContinuousClock.now + .seconds(30)
            while seen < end, ContinuousClock.now < deadline {
                _ = try consumer.poll(max: 1000, timeoutMs: 100) { _ in seen += 1 }
            }
            total += Int(seen)
        }
        return total
    }
}
