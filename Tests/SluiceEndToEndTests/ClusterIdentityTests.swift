// Identities in the cluster's certificates, end to end: every leaf is spiffe://sluice/<role>/<name>.
// A worker accepts only the coordinator role (a fake coordinator holding a worker's certificate
// gets no join, runs no partition, writes nothing); the coordinator takes joins only from worker
// certificates and status calls only from the operator; bad TLS files and a bad cluster
// configuration exit 2 at once with the file or flag and the fix.

import Crypto
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import SluiceConnectors
import SluiceProtocol
import SluiceTLS
import SwiftASN1
import Synchronization
import Testing
import X509

/// A coordinator that grants every partition to whoever joins, and names the sink it wants
/// written: what an attacker holding some certificate of the CA would run.
private final class FakeCoordinator: Sluice_V1_Coordinator.SimpleServiceProtocol, Sendable {
    let input: String
    let output: String
    let partitions: Int
    private let joined = Mutex<[String]>([])
    var joins: [String] { joined.withLock { $0 } }

    init(input: String, output: String, partitions: Int) {
        self.input = input
        self.output = output
        self.partitions = partitions
    }

    func join(request: Sluice_V1_JoinRequest, context: ServerContext) async throws -> Sluice_V1_JoinResponse {
        joined.withLock { $0.append(request.workerID) }
        return .with {
            $0.workerID = request.workerID
            $0.partitions = UInt32(partitions)
            $0.leaseTtlMs = 60_000
            $0.heartbeatIntervalMs = 500
            $0.jobYaml = "name: bids-tumbling\nwindow: {kind: tumbling, size_ms: 10000}\naggregates: [count]\n"
            $0.input = input
            $0.output = output
        }
    }

    func session(request: RPCAsyncSequence<Sluice_V1_WorkerMessage, any Error>,
                 response: RPCWriter<Sluice_V1_CoordinatorMessage>, context: ServerContext) async throws {
        for try await message in request {
            switch message.kind {
            case .hello:
                for p in 0..<partitions {
                    try await response.write(.with { $0.kind = .grant(.with { $0.partition = UInt32(p); $0.epoch = 1; $0.leaseTtlMs = 60_000 }) })
                }
            case .heartbeat(let heartbeat):
                try await response.write(.with {
                    $0.kind = .renewal(.with { $0.leases = heartbeat.partitions.map { p in .with { $0.partition = p.partition; $0.epoch = p.epoch } } })
                })
            default:
                continue
            }
        }
    }

    func status(request: Sluice_V1_StatusRequest, context: ServerContext) async throws -> Sluice_V1_StatusResponse { .init() }

    /// Serves with `tls` on 127.0.0.1 until `body` returns.
    func serving<T: Sendable>(tls: TLSFiles, _ body: @Sendable (Int) async throws -> T) async throws -> T {
        let transport = HTTP2ServerTransport.Posix(address: .ipv4(host: "127.0.0.1", port: 0), transportSecurity: try tls.server())
        return try await withGRPCServer(transport: transport, services: [self]) { server in
            let port = try await transport.listeningAddress.ipv4?.port ?? 0
            defer { server.beginGracefulShutdown() }
            return try await body(port)
        }
    }
}

/// A leaf of `identity` signed by the development CA in `certs`, with server-auth usage and the
/// coordinator's names (localhost, 127.0.0.1) whatever its role: a certificate that hostname
/// verification alone would accept. Written as NAME.pem / NAME-key.pem.
private func issueServerShaped(_ identity: ClusterIdentity?, name: String, in certs: String) throws -> TLSFiles {
    func file(_ n: String) -> String { (certs as NSString).appendingPathComponent(n) }
    let caKey = try P256.Signing.PrivateKey(pemRepresentation: Child.read(file("ca-key.pem")))
    let ca = try Certificate(pemEncoded: Child.read(file("ca.pem")))
    let key = P256.Signing.PrivateKey()
    var names: [GeneralName] = [.dnsName("localhost"), .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1]))]
    if let identity { names.append(.uniformResourceIdentifier(identity.uri)) }
    let now = Date()
    let leaf = try Certificate(
        version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
        notValidBefore: now.addingTimeInterval(-3_600), notValidAfter: now.addingTimeInterval(86_400),
        issuer: ca.subject, subject: try DistinguishedName { CommonName(name) }, signatureAlgorithm: .ecdsaWithSHA256,
        extensions: try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true))
            try ExtendedKeyUsage([.serverAuth, .clientAuth])
            SubjectAlternativeNames(names)
        },
        issuerPrivateKey: .init(caKey))
    let files = TLSFiles(certificate: file("\(name).pem"), key: file("\(name)-key.pem"), ca: file("ca.pem"))
    try leaf.serializeAsPEM().pemString.write(toFile: files.certificate, atomically: true, encoding: .utf8)
    try key.pemRepresentation.write(toFile: files.key, atomically: true, encoding: .utf8)
    return files
}

extension SluiceEndToEndTests.ClusterTests {
    @Test("Identity: a real worker refuses a fake coordinator holding a worker's (or any non-coordinator) certificate",
          .timeLimit(.minutes(3)))
    func workerRefusesFakeCoordinator() async throws {
        let scratch = try ScratchDir("identity-fake-coordinator")
        defer { scratch.remove() }
        let input = try await GeneratedInputs.shared.directory(seed: 5, events: 2_000, partitions: 2)
        let certs = scratch.at("certs")
        let made = try await sluice(["certs", "init", "--dir", certs, "--workers", "3"], scratch: scratch, label: "certs")
        try #require(made.exitedWith0, "\(made)")
        func file(_ name: String) -> String { (certs as NSString).appendingPathComponent(name) }
        func files(_ name: String) -> TLSFiles { TLSFiles(certificate: file("\(name).pem"), key: file("\(name)-key.pem"), ca: file("ca.pem")) }

        // The brief's impostor (worker-1's own files), then certificates that pass hostname
        // verification but name the wrong role, or none.
        let impostors: [(what: String, tls: TLSFiles)] = [
            ("worker-1's certificate", files("worker-1")),
            ("operator's certificate", files("operator")),
            ("a worker-role certificate with localhost, 127.0.0.1 and server auth",
             try issueServerShaped(ClusterIdentity(role: .worker, name: "worker-1"), name: "worker-shaped-as-server", in: certs)),
            ("a certificate with localhost, 127.0.0.1 and server auth but no Sluice identity",
             try issueServerShaped(nil, name: "no-identity-server", in: certs)),
        ]
        for (i, impostor) in impostors.enumerated() {
            let sink = scratch.at("fake-\(i)-out.db")
            let fake = FakeCoordinator(input: "file:\(input)", output: "sqlite:\(sink)", partitions: 2)
            let worker = try await fake.serving(tls: impostor.tls) { port in
                let child = try Child(["worker", "--id", "worker-3", "--certs", certs, "--coordinator", "127.0.0.1:\(port)"],
                                      scratch: scratch, label: "worker-3-vs-fake-\(i)")
                // Several reconnect attempts (backoff is at most 2 s); a join would come in the first second.
                try await Task.sleep(for: .seconds(6))
                return await child.wait(timeout: .milliseconds(1))  // kills it
            }
            #expect(fake.joins.isEmpty, "\(impostor.what): the worker joined the fake coordinator: \(fake.joins)")
            #expect(!FileManager.default.fileExists(atPath: sink), "\(impostor.what): the worker wrote the fake's sink")
            #expect(!worker.stderr.contains(": joined ("), "\(impostor.what): \(worker)")
            #expect(worker.stderr.contains("refused the server at 127.0.0.1"), "\(impostor.what): no refusal in the worker's log: \(worker)")
            print("[identity] \(impostor.what): \(worker.stderr.split(separator: "\n").first { $0.contains("refused the server") } ?? "")")
        }

        // The control: the same fake with the coordinator's certificate is obeyed (so the refusals
        // above are the identity check, not a broken fake) and its sink is written.
        let sink = scratch.at("control-out.db")
        let control = FakeCoordinator(input: "file:\(input)", output: "sqlite:\(sink)", partitions: 2)
        let accepted = try await control.serving(tls: files("coordinator")) { port in
            let child = try Child(["worker", "--id", "worker-3", "--certs", certs, "--coordinator", "127.0.0.1:\(port)"],
                                  scratch: scratch, label: "worker-3-vs-control")
            let deadline = ContinuousClock.now + .seconds(60)
            while ContinuousClock.now < deadline, !FileManager.default.fileExists(atPath: sink) || control.joins.isEmpty {
                try await Task.sleep(for: .milliseconds(100))
            }
            return await child.wait(timeout: .milliseconds(1))
        }
        #expect(control.joins == ["worker-3"], "\(accepted)")
        #expect(FileManager.default.fileExists(atPath: sink), "the control run wrote nothing: \(accepted)")

        // A coordinator that hands out a sink no worker can open: the worker exits 2 at once.
        let bogus = FakeCoordinator(input: "file:\(input)", output: "bogus:x", partitions: 2)
        let refused = try await bogus.serving(tls: files("coordinator")) { port in
            try await sluice(["worker", "--id", "worker-3", "--certs", certs, "--coordinator", "127.0.0.1:\(port)"],
                             scratch: scratch, label: "worker-3-vs-bogus-sink", timeout: .seconds(60))
        }
        #expect(!refused.timedOut && refused.status == 2 && refused.stderr.contains("unknown sink 'bogus:x'")
                && refused.stderr.contains("--output"), "a worker given sink bogus:x should exit 2 naming it: \(refused)")

        // A coordinator that hands out an output directory holding someone else's file: the
        // worker refuses it (exit 2, naming the directory) and leaves the file alone.
        let foreignDir = scratch.at("foreign-out")
        let foreignFile = (FileSink.partitionDirectory(foreignDir, partition: 0) as NSString).appendingPathComponent("budget-2024.csv")
        try FileManager.default.createDirectory(atPath: (foreignFile as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try "a user's file\n".write(toFile: foreignFile, atomically: true, encoding: .utf8)
        let foreign = FakeCoordinator(input: "file:\(input)", output: "file:\(foreignDir)", partitions: 2)
        let refusedDir = try await foreign.serving(tls: files("coordinator")) { port in
            try await sluice(["worker", "--id", "worker-3", "--certs", certs, "--coordinator", "127.0.0.1:\(port)"],
                             scratch: scratch, label: "worker-3-vs-foreign-dir", timeout: .seconds(60))
        }
        #expect(!refusedDir.timedOut && refusedDir.status == 2 && refusedDir.stderr.contains(foreignDir),
                "a worker given a foreign output directory should exit 2 naming it: \(refusedDir)")
        #expect(FileManager.default.fileExists(atPath: foreignFile), "the worker deleted a file it did not write")
    }

    @Test("Identity: the coordinator takes joins only from worker certificates and status only from the operator",
          .timeLimit(.minutes(3)))
    func coordinatorChecksRoles() async throws {
        let input = try await GeneratedInputs.shared.directory(seed: 5, events: 2_000, partitions: 2)
        let cluster = try await Cluster(label: "identity-roles", input: input, workerCerts: 2)
        defer { cluster.tearDown() }
        try await cluster.startCoordinator()
        // It listens before it leads (and refuses calls as `unavailable` until then).
        try await cluster.waitForStatus("the coordinator leads", timeout: .seconds(30)) { !$0.partitions.isEmpty }
        func files(_ name: String) -> TLSFiles {
            let c = cluster.certs as NSString
            return TLSFiles(certificate: c.appendingPathComponent("\(name).pem"), key: c.appendingPathComponent("\(name)-key.pem"),
                            ca: c.appendingPathComponent("ca.pem"))
        }
        func client<T: Sendable>(_ name: String, _ body: @Sendable (Sluice_V1_Coordinator.Client<HTTP2ClientTransport.Posix>) async throws -> T) async throws -> T {
            let transport = try HTTP2ClientTransport.Posix(target: .ipv4(address: "127.0.0.1", port: cluster.port),
                                                           transportSecurity: try files(name).client(serverHost: "127.0.0.1"))
            return try await withGRPCClient(transport: transport) { try await body(Sluice_V1_Coordinator.Client(wrapping: $0)) }
        }
        func refusal<T>(_ call: () async throws -> T) async -> String {
            do {
                _ = try await call()
                return "accepted"
            } catch let error as RPCError {
                return "\(error.code)"
            } catch {
                return "error: \(error)"
            }
        }
        // The operator's certificate gets through TLS and is refused by role; the coordinator's
        // has no client-auth usage, so the handshake already refuses it (`unavailable`).
        for (name, expected) in [("operator", RPCError.Code.permissionDenied), ("coordinator", .unavailable)] {
            let joined = await refusal { try await client(name) { try await $0.join(.with { $0.workerID = name; $0.version = "1" }) } }
            #expect(joined == "\(expected)", "Join with the \(name) certificate: \(joined)")
        }
        let workerStatus = await refusal { try await client("worker-2") { try await $0.status(.init()) } }
        #expect(workerStatus == "\(RPCError.Code.permissionDenied)", "status with worker-2's certificate: \(workerStatus)")
        let operatorStatus = try await client("operator") { try await $0.status(.init()) }
        #expect(operatorStatus.partitions.count == 2)
        let workerJoin = try await client("worker-2") { try await $0.join(.with { $0.workerID = "worker-2"; $0.version = "1" }) }
        #expect(workerJoin.workerID == "worker-2")
        #expect(!cluster.coordinatorLog.contains("operator joined") && !cluster.coordinatorLog.contains("coordinator joined"),
                "\(cluster.coordinatorLog)")

        // The CLI refuses a non-operator identity for status before dialling.
        let cli = try await sluice(["status", "--coordinator", cluster.address, "--certs", cluster.certs, "--as", "worker-2"],
                                   scratch: cluster.scratch, label: "status-as-worker-2", timeout: .seconds(30))
        #expect(cli.status == 2 && cli.stderr.contains("an operator needs spiffe://sluice/operator/") && !cli.stdout.contains("partition"),
                "\(cli)")
    }

    @Test("Identity: bad TLS files and a bad cluster configuration exit 2 at once, naming the file or flag and the fix",
          .timeLimit(.minutes(3)))
    func badConfigurationExits2() async throws {
        let scratch = try ScratchDir("identity-bad-config")
        defer { scratch.remove() }
        let input = try await GeneratedInputs.shared.directory(seed: 5, events: 2_000, partitions: 2)
        let certs = scratch.at("certs")
        let made = try await sluice(["certs", "init", "--dir", certs, "--workers", "8"], scratch: scratch, label: "certs")
        try #require(made.exitedWith0, "\(made)")
        func file(_ name: String) -> String { (certs as NSString).appendingPathComponent(name) }
        // An expired worker certificate: valid for 0 days, so past its end a moment after it is made.
        let expired = scratch.at("expired-certs")
        try DevelopmentCertificates.initialize(directory: expired, workers: 1, validDays: 0)
        try await Task.sleep(for: .seconds(2))
        let nowhere = "127.0.0.1:1"  // nothing listens: only a start-up check can end these
        let sinkDir = scratch.at("never-created")

        let cases: [(what: String, args: [String], mustSay: [String])] = [
            ("coordinator --output bogus:x",
             ["coordinator", "--certs", certs, "--listen", "127.0.0.1:0", "--state", scratch.at("c1.db"),
              "--input", "file:\(input)", "--output", "bogus:x"],
             ["--output", "unknown sink 'bogus:x'", "expected file:DIR"]),
            ("coordinator --output file: (no directory)",
             ["coordinator", "--certs", certs, "--listen", "127.0.0.1:0", "--state", scratch.at("c2.db"),
              "--input", "file:\(input)", "--output", "file:"],
             ["--output", "no directory"]),
            ("coordinator --input bogus",
             ["coordinator", "--certs", certs, "--listen", "127.0.0.1:0", "--state", scratch.at("c3.db"),
              "--input", "bogus:y", "--output", "file:\(sinkDir)"],
             ["--input"]),
            ("coordinator with worker-1's certificate",
             ["coordinator", "--cert", file("worker-1.pem"), "--key", file("worker-1-key.pem"), "--ca", file("ca.pem"),
              "--listen", "127.0.0.1:0", "--state", scratch.at("c4.db"), "--input", "file:\(input)", "--output", "file:\(sinkDir)"],
             ["--cert", "worker-1.pem", "a coordinator needs spiffe://sluice/coordinator/"]),
            ("worker whose key is not its certificate's",
             ["worker", "--coordinator", nowhere, "--cert", file("worker-1.pem"), "--key", file("worker-2-key.pem"), "--ca", file("ca.pem")],
             ["--key", "worker-2-key.pem", "does not belong to the certificate"]),
            ("worker with an expired certificate",
             ["worker", "--id", "worker-1", "--coordinator", nowhere, "--certs", expired],
             ["--cert", "worker-1.pem", "expired", "renew it"]),
            ("worker --id worker-9 with 8 certificates",
             ["worker", "--id", "worker-9", "--coordinator", nowhere, "--certs", certs],
             ["worker-9.pem", "does not exist", "sluice certs init --dir DIR --workers N"]),
            ("worker with a missing CA file",
             ["worker", "--coordinator", nowhere, "--cert", file("worker-1.pem"), "--key", file("worker-1-key.pem"), "--ca", scratch.at("no-ca.pem")],
             ["--ca", "no-ca.pem", "does not exist"]),
            ("worker with the operator's certificate",
             ["worker", "--coordinator", nowhere, "--cert", file("operator.pem"), "--key", file("operator-key.pem"), "--ca", file("ca.pem")],
             ["operator.pem", "a worker needs spiffe://sluice/worker/"]),
        ]
        for c in cases {
            let began = ContinuousClock.now
            let exit = try await sluice(c.args, scratch: scratch, label: c.what.replacingOccurrences(of: " ", with: "-"), timeout: .seconds(30))
            let elapsed = ContinuousClock.now - began
            #expect(!exit.timedOut && !exit.signaled && exit.status == 2, "\(c.what): should exit 2 within 30 s: \(exit)")
            for text in c.mustSay {
                #expect(exit.stderr.contains(text), "\(c.what): the error should say '\(text)': \(exit.stderr.suffix(1_500))")
            }
            #expect(!exit.stderr.contains("NSCocoaErrorDomain") && !exit.stdout.contains("listening on"), "\(c.what): \(exit)")
            print("[identity] \(c.what): exit \(exit.status) after \(elapsed.ms) ms: \(exit.stderr.split(separator: "\n").last ?? "")")
        }
        #expect(!FileManager.default.fileExists(atPath: sinkDir), "a refused coordinator created its sink directory")
    }
}
