// Idle connections must not take a coordinator down: connections that never finish their TLS
// handshake (gRPC) or their request (metrics) are closed within the handshake timeout, and with
// more of them open than the process has file descriptors, `sluice status` and /readyz are still
// served (the oldest unauthenticated connection makes room for a new one).

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Plain TCP connections to 127.0.0.1 that send nothing.
final class IdleConnections {
    private(set) var open: [Int32] = []
    private(set) var refused = 0

    /// Opens up to `count` connections to `port` (bounded by `count`; a refused one is counted).
    init(port: Int, count: Int) {
        for _ in 0..<count {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { refused += 1; continue }
            if connectLoopback(fd, port: port) { open.append(fd) } else { close(fd); refused += 1 }
        }
    }

    /// How many the server has closed by now (a read returns end of file or an error at once).
    func closedByServer() -> Int {
        var closed = 0
        for fd in open {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 0) == 1 else { continue }
            var byte: UInt8 = 0
            if recv(fd, &byte, 1, Int32(MSG_PEEK)) <= 0 { closed += 1 }
        }
        return closed
    }

    func closeAll() {
        for fd in open { close(fd) }
        open = []
    }

    deinit { closeAll() }
}

extension SluiceEndToEndTests.ClusterTests {
    @Test("Idle connections to the gRPC and metrics ports are closed within the 10 s handshake timeout",
          .timeLimit(.minutes(3)))
    func idleConnectionsAreClosed() async throws {
        let cluster = try await Cluster(label: "idle-connections", input: "", inputURI: Self.tinyInput)
        defer { cluster.tearDown() }
        let coordinator = try Self.coordinator(cluster, ["--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0"], label: "coordinator")
        let grpcPort = try await Self.listeningPort(coordinator)
        let metricsPort = try await coordinator.metricsPort()
        let grpc = IdleConnections(port: grpcPort, count: 50), http = IdleConnections(port: metricsPort, count: 50)
        try #require(grpc.open.count == 50 && http.open.count == 50, "could not open the idle connections")
        let opened = ContinuousClock.now
        // The default handshake timeout is 10 s; 20 s more for a loaded machine.
        let allClosed = await eventually(timeout: .seconds(30), every: .milliseconds(250)) {
            grpc.closedByServer() == 50 && http.closedByServer() == 50
        }
        let after = ContinuousClock.now - opened
        #expect(allClosed, "after \(after.ms) ms the server had closed \(grpc.closedByServer())/50 idle gRPC and \(http.closedByServer())/50 idle metrics connections")
        #expect(after >= .seconds(5), "idle connections were closed after \(after.ms) ms, before the 10 s handshake timeout")
        print("[idle-connections] 100 idle connections closed \(after.ms) ms after they opened (handshake timeout 10 s)")
        // The coordinator still serves.
        #expect(try httpGet(port: metricsPort, path: "/readyz").status == 200)
    }

    @Test("With more idle connections than the coordinator has file descriptors, sluice status and /readyz are still served",
          .timeLimit(.minutes(3)))
    func servedDespiteAnIdleFlood() async throws {
        let cluster = try await Cluster(label: "idle-flood", input: "", inputURI: Self.tinyInput)
        defer { cluster.tearDown() }
        let coordinator = try Child(["coordinator", "--certs", cluster.certs, "--input", Self.tinyInput, "--output", cluster.output,
                                     "--state", cluster.coordinatorState, "--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0"],
                                    scratch: cluster.scratch, label: "coordinator",
                                    launcher: ["/usr/bin/prlimit", "--nofile=256:256", "--"])
        let grpcPort = try await Self.listeningPort(coordinator)
        let metricsPort = try await coordinator.metricsPort()
        let led = await eventually(timeout: .seconds(20)) { cluster.log(coordinator).contains(": leading (leader epoch") }
        try #require(led, "the coordinator never led:\n\(cluster.log(coordinator).suffix(2_000))")
        // 600 connections against 256 descriptors: without a cap, accept fails (EMFILE) until they close.
        let grpc = IdleConnections(port: grpcPort, count: 300), http = IdleConnections(port: metricsPort, count: 300)
        defer { grpc.closeAll(); http.closeAll() }
        try await Task.sleep(for: .milliseconds(500))

        let status = try Child(["status", "--coordinator", "127.0.0.1:\(grpcPort)", "--certs", cluster.certs, "--as", "operator"],
                               scratch: cluster.scratch, label: "status")
        let exit = await status.wait(timeout: .seconds(8))  // below the 10 s in which the idle ones would time out
        #expect(exit.exitedWith0, "sluice status failed beside 600 idle connections: \(exit)\n\(cluster.log(coordinator).suffix(2_000))")
        let ready = try? httpGet(port: metricsPort, path: "/readyz", timeoutSeconds: 8)
        #expect(ready?.status == 200, "/readyz was not served beside 600 idle connections: \(String(describing: ready))")
        #expect(cluster.log(coordinator).contains("open-file limit"),
                "the coordinator must log that it could not raise its open-file limit:\n\(cluster.log(coordinator).suffix(2_000))")
    }
}
