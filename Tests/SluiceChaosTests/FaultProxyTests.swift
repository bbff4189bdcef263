import Foundation
import Testing
@testable import SluiceChaos
#if canImport(Glibc)
import Glibc
#endif

/// A small echo server on loopback (a thread per connection), closed with its listener.
final class EchoServer: @unchecked Sendable {
    let fd: Int32
    let port: Int
    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var address = FaultProxy.loopback(port: 0)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        listen(fd, 8)
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        port = Int(UInt16(bigEndian: actual.sin_port))
        let listener = fd
        Thread {
            for _ in 0..<16 {
                let c = accept(listener, nil, nil)
                if c < 0 { return }
                Thread {
                    var buffer = [UInt8](repeating: 0, count: 4096)
                    for _ in 0..<10_000 {
                        let n = buffer.withUnsafeMutableBytes { recv(c, $0.baseAddress, $0.count, 0) }
                        if n <= 0 { break }
                        _ = buffer.withUnsafeBytes { send(c, $0.baseAddress, n, Int32(MSG_NOSIGNAL)) }
                    }
                    close(c)
                }.start()
            }
        }.start()
    }
    func stop() { shutdown(fd, Int32(SHUT_RDWR)); close(fd) }
}

/// The proxy with real sockets on loopback: an echo server behind it, a client in front.
@Suite(.serialized) struct FaultProxyTests {
    /// Connects to `port` with a receive timeout.
    private func connectClient(_ port: Int, timeoutMs: Int = 300) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = FaultProxy.loopback(port: port)
        let rc = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        try #require(rc == 0)
        var tv = timeval(tv_sec: timeoutMs / 1000, tv_usec: (timeoutMs % 1000) * 1000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    /// Sends `text` and reads what comes back within the timeout (nil: nothing; "" : closed or reset).
    private func roundTrip(_ fd: Int32, _ text: String?) -> String? {
        if let text { _ = Array(text.utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return nil }
        return n <= 0 ? "" : String(decoding: buffer[0..<n], as: UTF8.self)
    }

    @Test func passesThroughHoldsBackDelaysAndResets() throws {
        let server = try EchoServer()
        defer { server.stop() }
        let proxy = try FaultProxy(targetPort: server.port)
        defer { proxy.close() }
        let client = try connectClient(proxy.port)
        defer { close(client) }
        #expect(roundTrip(client, "hello") == "hello")

        // Blackhole upstream: held back, not lost; delivered once healed.
        proxy.apply(.blackhole, direction: .upstream)
        #expect(roundTrip(client, "held") == nil)
        proxy.heal()
        #expect(roundTrip(client, nil) == "held")

        // Blackhole downstream: the echo is held on the way back.
        proxy.apply(.blackhole, direction: .downstream)
        #expect(roundTrip(client, "back") == nil)
        proxy.heal()
        #expect(roundTrip(client, nil) == "back")

        // Delay: nothing within 300 ms, then the reply.
        proxy.apply(.delay(ms: 600, jitterMs: 0), direction: .both)
        let sent = Date()
        #expect(roundTrip(client, "slow") == nil)
        var reply: String?
        for _ in 0..<10 where reply == nil { reply = roundTrip(client, nil) }
        #expect(reply == "slow")
        #expect(Date().timeIntervalSince(sent) >= 1.1)  // 600 ms each way
        proxy.heal()

        // Reset: the open connection dies, and a new one is refused while the fault lasts.
        proxy.apply(.reset, direction: .both)
        var ended: String?
        for _ in 0..<10 where ended == nil { ended = roundTrip(client, nil) }
        #expect(ended == "")
        let second = try connectClient(proxy.port)
        #expect(roundTrip(second, "x") == "")
        close(second)
        proxy.heal()
        let third = try connectClient(proxy.port)
        #expect(roundTrip(third, "again") == "again")
        close(third)
    }
}
