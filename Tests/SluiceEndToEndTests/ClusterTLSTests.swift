// Mutual TLS at the coordinator, end to end: only a worker certificate of the cluster's CA whose
// identity (spiffe://sluice/worker/<id>) is the worker's id gets a lease; plain TCP gets nothing;
// only the operator's certificate reads the status (ClusterIdentityTests checks the other roles).

import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import SluiceProtocol
import SluiceTLS
import Testing

extension SluiceEndToEndTests.ClusterTests {
    @Test("Cluster: mutual TLS refuses another CA, a certificate that is not the worker's, and plain TCP",
          .timeLimit(.minutes(3)))
    func tlsRefusals() async throws {
        let began = ContinuousClock.now
        let input = try await GeneratedInputs.shared.directory(seed: 5, events: 20_000, partitions: 8)
        let cluster = try await Cluster(label: "tls", input: input, workerCerts: 3)
        defer { cluster.tearDown() }
        let certs = cluster.certs
        func file(_ dir: String, _ name: String) -> String { (dir as NSString).appendingPathComponent(name) }

        // Another `certs init`: another CA, the same identities.
        let foreign = cluster.scratch.at("foreign-certs")
        let initForeign = try await sluice(["certs", "init", "--dir", foreign, "--workers", "3"], scratch: cluster.scratch, label: "certs-foreign")
        try #require(initForeign.exitedWith0, "certs init of the foreign CA: \(initForeign)")
        try #require(Child.read(file(certs, "ca.pem")) != Child.read(file(foreign, "ca.pem")), "the two CAs are the same")

        try await cluster.startCoordinator()

        // (b) The CLI refuses an --id that is not its certificate's identity, before connecting.
        let mismatch = try await sluice(["worker", "--id", "worker-1", "--coordinator", cluster.address,
                                         "--cert", file(certs, "worker-2.pem"), "--key", file(certs, "worker-2-key.pem"),
                                         "--ca", file(certs, "ca.pem")],
                                        scratch: cluster.scratch, label: "worker-1-with-worker-2-files", timeout: .seconds(30))
        #expect(!mismatch.signaled && mismatch.status == 2 && mismatch.stderr.contains("does not match"),
                "a worker-1 with worker-2's certificate should exit 2 saying it does not match: \(mismatch)")

        // (b) The operator's certificate reads the status; a worker's does not.
        let status = try await cluster.tryStatus(as: "operator")
        #expect(status?.partitions.count == 8, "sluice status --as operator failed or is incomplete: \(status?.text ?? "no status")")
        #expect(try await cluster.tryStatus(as: "worker-2") == nil, "sluice status --as worker-2 should be refused")
        // (c) Plain TCP cannot read it.
        let plain = try await sluice(["status", "--coordinator", cluster.address, "--insecure"], scratch: cluster.scratch,
                                     label: "status-insecure", timeout: .seconds(30))
        #expect(!plain.exitedWith0 && !plain.timedOut && !plain.stdout.contains("partition"),
                "sluice status over plain TCP should fail against the TLS coordinator: \(plain)")

        // (b) The CLI reads a chain file's leaf too: worker-2's certificate followed by the CA's is
        // still worker-2's.
        let chain = cluster.scratch.at("worker-2-chain.pem")
        try (Child.read(file(certs, "worker-2.pem")) + "\n" + Child.read(file(certs, "ca.pem")) + "\n").write(toFile: chain, atomically: true, encoding: .utf8)
        let chainMismatch = try await sluice(["worker", "--id", "worker-1", "--coordinator", cluster.address,
                                              "--cert", chain, "--key", file(certs, "worker-2-key.pem"), "--ca", file(certs, "ca.pem")],
                                             scratch: cluster.scratch, label: "worker-1-with-worker-2-chain", timeout: .seconds(30))
        #expect(chainMismatch.status == 2 && chainMismatch.stderr.contains("does not match"), "\(chainMismatch)")

        // (b) The coordinator itself binds every call to the certificate: a client holding
        // worker-2's certificate cannot join, or open a session, as worker-1 (so it can never renew
        // worker-1's leases), and can as worker-2.
        let worker2 = TLSFiles(certificate: file(certs, "worker-2.pem"), key: file(certs, "worker-2-key.pem"), ca: file(certs, "ca.pem"))
        let transport = try HTTP2ClientTransport.Posix(target: .ipv4(address: "127.0.0.1", port: cluster.port),
                                                       transportSecurity: try worker2.client(serverHost: "127.0.0.1"))
        try await withGRPCClient(transport: transport) { client in
            let coordinator = Sluice_V1_Coordinator.Client(wrapping: client)
            do {
                _ = try await coordinator.join(.with { $0.workerID = "worker-1" })
                Issue.record("the coordinator let worker-2's certificate join as worker-1")
            } catch let error as RPCError {
                #expect(error.code == .permissionDenied, "\(error)")
            }
            let refusedSession: RPCError.Code? = try await coordinator.session(requestProducer: { writer in
                try await writer.write(.with { $0.kind = .hello(.with { $0.workerID = "worker-1" }) })
                var heartbeat = Sluice_V1_Heartbeat()
                heartbeat.partitions = (0..<8).map { p in .with { $0.partition = UInt32(p); $0.epoch = 1 } }
                try await writer.write(.with { $0.kind = .heartbeat(heartbeat) })
            }, onResponse: { response in
                do {
                    for try await message in response.messages {
                        if case .renewal(let renewal)? = message.kind, !renewal.leases.isEmpty { return nil }
                    }
                    return nil
                } catch let error as RPCError {
                    return error.code
                }
            })
            #expect(refusedSession == .permissionDenied, "a session as worker-1 with worker-2's certificate: \(String(describing: refusedSession))")
            let accepted = try await coordinator.join(.with { $0.workerID = "worker-2" })
            #expect(accepted.workerID == "worker-2")
        }

        // Intruders, all at once; each keeps retrying.
        let intruders: [(what: String, id: String, tls: [String])] = [
            ("all files from another CA", "worker-1", ["--certs", foreign]),
            ("a certificate of another CA, our CA trusted", "worker-1",
             ["--cert", file(foreign, "worker-1.pem"), "--key", file(foreign, "worker-1-key.pem"), "--ca", file(certs, "ca.pem")]),
            ("plain TCP (--insecure)", "worker-2", ["--insecure"]),
        ]
        let children = try intruders.enumerated().map { i, intruder in
            try cluster.startWorker(intruder.id, rate: nil, tls: intruder.tls, label: "intruder-\(i + 1)-\(intruder.id)")
        }
        let intrudersStarted = ContinuousClock.now

        // The control: a real worker joins and gets every partition.
        try await Task.sleep(for: .seconds(1))
        try cluster.startWorker("worker-3", rate: nil)
        let control = try await cluster.waitForStatus("worker-3 holds all 8 partitions", timeout: .seconds(30)) {
            $0.settled && $0.heldCounts == ["worker-3": 8]
        }
        #expect(control.workers.map(\.id) == ["worker-3"], "workers other than worker-3 are members:\n\(control)")
        let watchFor = Duration.seconds(6)
        if ContinuousClock.now - intrudersStarted < watchFor { try await Task.sleep(until: intrudersStarted + watchFor) }

        let coordinatorLog = cluster.coordinatorLog
        let joined = ClusterLog.lines(coordinatorLog, containing: " joined")
        // worker-2 is this test's own direct client (it joined as itself and held no session).
        // The message within the log line (`TIME LEVEL coordinator: worker-2 joined key=value…`).
        let messages = joined.compactMap { line -> String? in
            guard let start = line.range(of: "coordinator: "),
                  let end = line.range(of: " joined", range: start.upperBound..<line.endIndex) else { return nil }
            return String(line[start.lowerBound..<end.upperBound])
        }
        #expect(Set(messages) == ["coordinator: worker-2 joined", "coordinator: worker-3 joined"],
                "only the direct client and worker-3 should have joined; the coordinator says:\n\(joined.joined(separator: "\n"))")
        for grant in ClusterLog.grants(coordinatorLog) {
            #expect(grant.worker == "worker-3", "an intruder was granted: \(grant)")
        }
        var report: [String] = []
        for (intruder, child) in zip(intruders, children) {
            let log = cluster.log(child)
            let refusals = ClusterLog.lines(log, containing: "connection to the coordinator lost")
            report.append("\(intruder.what): \(child.isRunning ? "still retrying" : "exited"), \(refusals.count) refused attempts; "
                          + "last: \(refusals.last.map { String($0.prefix(220)) } ?? "—")")
            #expect(ClusterLog.workerGrants(log).isEmpty, "\(intruder.what) was granted partitions:\n\(log.suffix(2_000))")
            #expect(!log.contains(": joined ("), "\(intruder.what) joined:\n\(log.suffix(2_000))")
            #expect(!refusals.isEmpty, "\(intruder.what): no connection errors in its log:\n\(log.suffix(2_000))")
            #expect(child.isRunning, "\(intruder.what) should keep retrying, it exited:\n\(log.suffix(2_000))")
        }
        print("[cluster tls] after \((ContinuousClock.now - intrudersStarted).ms) ms:\n  " + report.joined(separator: "\n  "))
        print("[cluster tls] mismatch refused by the CLI: \(mismatch.stderr.split(separator: "\n").last ?? "")")
        print("[cluster tls] plain TCP status: exit \(plain.status): \(plain.stderr.split(separator: "\n").last ?? "")")

        _ = try await finishAndVerify(cluster, label: "tls", timeout: .seconds(60))
        print("[cluster tls] wall time \((ContinuousClock.now - began).ms) ms")
    }
}
