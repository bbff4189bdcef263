import Foundation
import SluiceCoordinator
import SluiceOps
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The connection limits with short, injected timeouts: the metrics server and the coordinator's
/// gRPC server (plaintext) on 127.0.0.1.
@Suite struct ConnectionLimitsUnitTests {
    /// A TCP connection to 127.0.0.1:`port`, or nil.
    static func connectTo(_ port: Int) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if ok != 0 { close(fd); return nil }
        return fd
    }

    /// Whether the server has closed `fd` (a read returns end of file or an error at once).
    static func closedByServer(_ fd: Int32) -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, 0) == 1 else { return false }
        var buffer = [UInt8](repeating: 0, count: 4_096)
        // Drain what the server sent (HTTP/2 SETTINGS, GOAWAY) until end of file.
        for _ in 0..<16 {
            let n = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
            if n == 0 { return true }
            if n < 0 { return errno != EAGAIN && errno != EWOULDBLOCK }
        }
        return false
    }

    static func waitUntil(_ timeout: Duration, _ condition: () -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return condition()
    }

    @Test("Metrics server: silent connections are closed after the handshake timeout; past the cap the oldest make room; requests are served")
    func metricsServerLimits() async throws {
        let limits = ConnectionLimits(handshakeTimeout: .seconds(6), idleTimeout: .seconds(30), maxPending: 8)
        let server = try await OpsServer.start(host: "127.0.0.1", port: 0, limits: limits, ready: { true })
        defer { Task { await server.stop() } }
        let fds = (0..<20).compactMap { _ in Self.connectTo(server.port) }
        defer { fds.forEach { close($0) } }
        try #require(fds.count == 20)
        let opened = ContinuousClock.now
        // Twelve are closed at once to keep eight pending, long before the 6 s timeout.
        let evicted = await Self.waitUntil(.seconds(4)) { fds.filter(Self.closedByServer).count >= 12 }
        let closedEarly = fds.filter(Self.closedByServer).count
        #expect(evicted && closedEarly == 12 && ContinuousClock.now - opened < .seconds(6),
                "past the cap of 8, \(closedEarly) of 20 were closed after \((ContinuousClock.now - opened).ms) ms; 12 expected at once")
        // A real request still gets its answer, beside them.
        let served = try Self.get(port: server.port, path: "/healthz")
        #expect(served.hasPrefix("HTTP/1.1 200"), "not served: \(served)")
        let timedOut = await Self.waitUntil(.seconds(20)) { fds.allSatisfy(Self.closedByServer) }
        #expect(timedOut, "silent connections outlived the 6 s handshake timeout")
    }

    @Test("gRPC server: a silent connection is closed after the handshake timeout, not before")
    func grpcServerLimits() async throws {
        let socket = try BoundSocket.bind(host: "127.0.0.1", port: 0, option: "--listen")
        let limits = ConnectionLimits(handshakeTimeout: .milliseconds(1_500), idleTimeout: .seconds(30), maxPending: 8)
        let job = ClusterJob(jobYAML: "", input: "", output: "", partitions: 1, leaseTTLMs: 6_000, heartbeatIntervalMs: 2_000)
        let (listening, listened) = AsyncStream<Void>.makeStream()
        let server = Task {
            // Serves until the test ends and cancels it (the sleep ends at the cancellation).
            try await CoordinatorServer.serve(gate: LeaderGate(), job: job, socket: socket, tls: nil, limits: limits,
                                              onListening: { _ in listened.finish() },
                                              until: { try? await Task.sleep(for: .seconds(3_600)) })
        }
        defer { server.cancel() }
        for await _ in listening {}  // the bound socket listens only once the server runs
        let silent = try #require(Self.connectTo(socket.port))
        defer { close(silent) }
        let began = ContinuousClock.now
        let closed = await Self.waitUntil(.seconds(15)) { Self.closedByServer(silent) }
        #expect(closed, "a silent connection outlived the 1.5 s handshake timeout")
        #expect(ContinuousClock.now - began >= .milliseconds(1_000), "closed before the timeout could pass")
    }

    /// A GET over a fresh connection; the raw response.
    static func get(port: Int, path: String) throws -> String {
        let fd = try #require(connectTo(port))
        defer { close(fd) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let request = Array("GET \(path) HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        _ = send(fd, request, request.count, 0)
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4_096)
        for _ in 0..<64 {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            response += buffer[0..<n]
        }
        return String(decoding: response, as: UTF8.self)
    }
}

extension Duration {
    var ms: Int64 { components.seconds * 1_000 + components.attoseconds / 1_000_000_000_000_000 }
}
