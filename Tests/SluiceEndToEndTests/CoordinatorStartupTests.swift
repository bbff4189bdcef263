// Coordinators sharing one state: the lease is held by a process instance, not by a name (two
// same-named coordinators must not flap, and only the holder is ready); a SIGKILLed coordinator
// restarted under its name still takes over at once; and a coordinator that cannot bind its port,
// or has no certificates, exits 2 before it competes for the leadership.

import Foundation
import SluiceStorage
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension SluiceEndToEndTests.ClusterTests {
    /// A small generated input: these coordinators never see a worker.
    static let tinyInput = "gen:seed=7,events=1000,partitions=2,keys=10"

    /// The leader epoch in `cluster`'s coordinator store (SQLite or PostgreSQL), or nil while unreadable.
    static func leaderEpoch(_ cluster: Cluster) -> Int64? {
        if let database = cluster.database {
            guard let conn = try? PostgresConnection(url: PostgresURL(database)),
                  let rows = try? conn.execute("SELECT epoch FROM sluice_coordinator_leader WHERE id = 1"), rows.count == 1 else { return nil }
            return try? rows.int64(0, 0)
        }
        let state = cluster.coordinatorState
        guard FileManager.default.fileExists(atPath: state), let db = try? SQLiteDatabase(path: state),
              let stmt = try? db.prepare("SELECT epoch FROM coordinator_leader WHERE id = 1"),
              (try? stmt.step()) == true else { return nil }
        return stmt.int64(0)
    }

    /// `sluice coordinator` on `cluster`'s store (`--state` or `--store`), without waiting for it.
    static func coordinator(_ cluster: Cluster, _ extra: [String], label: String, leaderTTLMs: Int = 2_000) throws -> Child {
        try Child(["coordinator", "--certs", cluster.certs, "--input", tinyInput, "--output", cluster.output]
                    + (cluster.database.map { ["--store", $0] } ?? ["--state", cluster.coordinatorState])
                    + ["--leader-ttl-ms", "\(leaderTTLMs)"] + extra,
                  scratch: cluster.scratch, label: label)
    }

    /// Waits (bounded) until `child` prints its `coordinator listening on HOST:PORT` line.
    static func listeningPort(_ child: Child, timeout: Duration = .seconds(30)) async throws -> Int {
        var port: Int?
        _ = await eventually(timeout: timeout, every: .milliseconds(50)) {
            port = Child.read(child.stdoutPath).split(separator: "\n").first { $0.hasPrefix("coordinator listening on ") }?
                .split(separator: ":").last.flatMap { Int($0) }
            return port != nil || !child.isRunning
        }
        return try #require(port, "\(child.label) printed no listening line:\n\(Child.read(child.stderrPath).suffix(2_000))")
    }

    @Test("Two coordinators with the same default id on one state: the leader epoch stays put, exactly the leader answers /readyz 200",
          .timeLimit(.minutes(3)))
    func sameNamedCoordinatorsDoNotFlap() async throws {
        let cluster = try await Cluster(label: "same-name", input: "", inputURI: Self.tinyInput)
        defer { cluster.tearDown() }
        try await Self.sameNamedCoordinators(cluster)
    }

    /// Two coordinators with one name on `cluster`'s store: one leads, the epoch stays, only it is ready.
    static func sameNamedCoordinators(_ cluster: Cluster) async throws {
        // No --id: both are named HOST/127.0.0.1:0, as in the issue.
        let a = try Self.coordinator(cluster, ["--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0"], label: "coordinator-a")
        _ = try await Self.listeningPort(a)
        let leads = await eventually(timeout: .seconds(20)) { cluster.log(a).contains(": leading (leader epoch") }
        try #require(leads, "the first coordinator never led:\n\(cluster.log(a).suffix(2_000))")
        let b = try Self.coordinator(cluster, ["--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0"], label: "coordinator-b")
        _ = try await Self.listeningPort(b)
        let portA = try await a.metricsPort(), portB = try await b.metricsPort()
        let epoch = try #require(Self.leaderEpoch(cluster))

        // Three leadership TTLs (2 s each): the flapping of the issue bumped the epoch every second.
        var epochs: [Int64] = []
        var readiness: [(a: Int, b: Int)] = []
        for _ in 0..<12 {
            try await Task.sleep(for: .milliseconds(500))
            if let e = Self.leaderEpoch(cluster) { epochs.append(e) }
            readiness.append(((try? httpGet(port: portA, path: "/readyz").status) ?? -1,
                              (try? httpGet(port: portB, path: "/readyz").status) ?? -1))
        }
        #expect(epochs.allSatisfy { $0 == epoch }, "the leader epoch moved from \(epoch): \(epochs)\n\(cluster.diagnostics())")
        #expect(readiness.allSatisfy { $0.a == 200 && $0.b == 503 },
                "only the leader (the first) may be ready; /readyz (first, second): \(readiness)\n\(cluster.diagnostics())")
        #expect(!cluster.log(b).contains(": leading (leader epoch"), "the second coordinator led beside a live one:\n\(cluster.log(b).suffix(2_000))")
        #expect(!cluster.log(a).contains("stepped down"), "the live leader was deposed:\n\(cluster.log(a).suffix(2_000))")
        print("[same-name \(cluster.database == nil ? "sqlite" : "postgres")] leader epoch \(epoch) for 6 s with two same-named coordinators; /readyz 200 on the leader only")
    }

    @Test("A SIGKILLed coordinator restarted with the same --id takes over at once, long before its 30 s lease lapses",
          .timeLimit(.minutes(3)))
    func restartedCoordinatorTakesOverAtOnce() async throws {
        let cluster = try await Cluster(label: "restart-same-id", input: "", inputURI: Self.tinyInput)
        defer { cluster.tearDown() }
        try await Self.restartTakesOver(cluster)
    }

    /// A coordinator SIGKILLed and restarted under its --id on `cluster`'s store leads at once.
    static func restartTakesOver(_ cluster: Cluster) async throws {
        let args = ["--listen", "127.0.0.1:0", "--id", "coordinator-main"]
        let first = try Self.coordinator(cluster, args, label: "coordinator-first", leaderTTLMs: 30_000)
        _ = try await Self.listeningPort(first)
        let led = await eventually(timeout: .seconds(20)) { cluster.log(first).contains(": leading (leader epoch") }
        try #require(led, "the first coordinator never led:\n\(cluster.log(first).suffix(2_000))")
        let epoch = try #require(Self.leaderEpoch(cluster))
        first.kill()
        let killed = await first.wait(timeout: .seconds(10))
        try #require(killed.signaled, "the coordinator was not running when killed: \(killed)")

        let second = try Self.coordinator(cluster, args, label: "coordinator-second", leaderTTLMs: 30_000)
        let started = ContinuousClock.now
        let tookOver = await eventually(timeout: .seconds(25), every: .milliseconds(25)) {
            cluster.log(second).contains(": leading (leader epoch")
        }
        let after = ContinuousClock.now - started
        #expect(tookOver && after < .seconds(10),
                "the restarted coordinator led after \(after.ms) ms (lease 30 s): it must take over its dead predecessor's lease at once\n\(cluster.log(second).suffix(2_000))")
        #expect((Self.leaderEpoch(cluster) ?? 0) > epoch, "the restart must lead with a new epoch")
        print("[restart-same-id \(cluster.database == nil ? "sqlite" : "postgres")] the restarted coordinator led \(after.ms) ms after it started (lease 30 s)")
    }

    @Test("A second coordinator on a taken port exits 2 naming the address and the cause; the leader's epoch is unchanged",
          .timeLimit(.minutes(3)))
    func takenPortExitsBeforeCompeting() async throws {
        let cluster = try await Cluster(label: "taken-port", input: "", inputURI: Self.tinyInput)
        defer { cluster.tearDown() }
        let port = try freeLocalPort()
        // The default id: both are named HOST/127.0.0.1:PORT, as in the issue.
        let leader = try Self.coordinator(cluster, ["--listen", "127.0.0.1:\(port)"], label: "coordinator-leader")
        _ = try await Self.listeningPort(leader)
        let leads = await eventually(timeout: .seconds(20)) { cluster.log(leader).contains(": leading (leader epoch") }
        try #require(leads, "the first coordinator never led:\n\(cluster.log(leader).suffix(2_000))")
        let epoch = try #require(Self.leaderEpoch(cluster))

        let second = try Self.coordinator(cluster, ["--listen", "127.0.0.1:\(port)"], label: "coordinator-second")
        let exit = await second.wait(timeout: .seconds(30))
        #expect(exit.status == 2 && !exit.signaled, "a coordinator on a taken port must exit 2: \(exit)")
        #expect(exit.stderr.contains("127.0.0.1:\(port)") && exit.stderr.lowercased().contains("address already in use"),
                "the error must name the address and the cause: \(exit.stderr.suffix(1_000))")
        #expect(!exit.stderr.contains(": leading"), "it led before it could bind: \(exit.stderr.suffix(1_000))")
        try await Task.sleep(for: .seconds(3))  // a deposed leader notices at its next renewal (a third of 2 s)
        #expect(Self.leaderEpoch(cluster) == epoch, "the leader epoch moved")
        #expect(!cluster.log(leader).contains("stepped down"), "the leader stepped down:\n\(cluster.log(leader).suffix(2_000))")

        // A metrics port in use: the same, before anything competes.
        let metrics = try Self.coordinator(cluster, ["--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:\(port)"], label: "coordinator-metrics")
        let metricsExit = await metrics.wait(timeout: .seconds(30))
        #expect(metricsExit.status == 2 && metricsExit.stderr.contains("127.0.0.1:\(port)")
                    && metricsExit.stderr.lowercased().contains("address already in use") && metricsExit.stderr.contains("--metrics"),
                "a taken --metrics port must exit 2 naming it: \(metricsExit)")
        #expect(Self.leaderEpoch(cluster) == epoch, "the leader epoch moved")
    }

    @Test("A coordinator on an address this machine does not have exits 2 naming it", .timeLimit(.minutes(2)))
    func unassignableAddressIsNamed() async throws {
        let cluster = try await Cluster(label: "no-such-address", input: "", inputURI: Self.tinyInput)
        defer { cluster.tearDown() }
        // 192.0.2.1 is TEST-NET-1 (RFC 5737): never a local address.
        let child = try Self.coordinator(cluster, ["--listen", "192.0.2.1:7400"], label: "coordinator")
        let exit = await child.wait(timeout: .seconds(30))
        #expect(exit.status == 2 && !exit.signaled, "must exit 2: \(exit)")
        #expect(exit.stderr.contains("192.0.2.1:7400") && exit.stderr.lowercased().contains("cannot assign requested address"),
                "the error must name the address and the cause: \(exit.stderr.suffix(1_000))")
        #expect(Self.leaderEpoch(cluster) ?? 0 == 0, "it competed for the leadership before it could listen")
    }

    @Test("--certs /nonexistent exits 2 at once, before it listens or competes for the leadership", .timeLimit(.minutes(2)))
    func missingCertificatesExitAtOnce() async throws {
        let cluster = try await Cluster(label: "no-certs", input: "", inputURI: Self.tinyInput)
        defer { cluster.tearDown() }
        let leader = try Self.coordinator(cluster, ["--listen", "127.0.0.1:0", "--id", "coordinator-main"], label: "coordinator-leader")
        _ = try await Self.listeningPort(leader)
        let leads = await eventually(timeout: .seconds(20)) { cluster.log(leader).contains(": leading (leader epoch") }
        try #require(leads, "the first coordinator never led:\n\(cluster.log(leader).suffix(2_000))")
        let epoch = try #require(Self.leaderEpoch(cluster))

        // The same --id: were it to compete, it could take the leadership from its namesake.
        let child = try Child(["coordinator", "--certs", "/nonexistent", "--input", Self.tinyInput, "--output", cluster.output,
                               "--state", cluster.coordinatorState, "--listen", "127.0.0.1:0", "--id", "coordinator-main"],
                              scratch: cluster.scratch, label: "coordinator-no-certs")
        let started = ContinuousClock.now
        let exit = await child.wait(timeout: .seconds(30))
        let took = ContinuousClock.now - started
        #expect(exit.status == 2 && !exit.signaled, "must exit 2: \(exit)")
        #expect(took < .seconds(10), "took \(took.ms) ms to refuse missing certificates")
        #expect(exit.stderr.contains("/nonexistent"), "the error must name the path: \(exit.stderr.suffix(1_000))")
        #expect(!exit.stdout.contains("coordinator listening on"), "it listened without certificates: \(exit.stdout)")
        #expect(!exit.stderr.contains(": leading"), "it led without certificates: \(exit.stderr.suffix(1_000))")
        try await Task.sleep(for: .seconds(2))
        #expect(Self.leaderEpoch(cluster) == epoch, "the leader epoch moved")
        #expect(!cluster.log(leader).contains("stepped down"), "the leader stepped down:\n\(cluster.log(leader).suffix(2_000))")
    }
}
