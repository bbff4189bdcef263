import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A TCP proxy on loopback that the harness puts between one worker and the coordinator. It
/// passes bytes through untouched (TLS included) until told to misbehave: hold them back
/// (blackhole), delay them with jitter, reset every connection, or throttle the bandwidth, in one
/// direction or both. Blocking sockets, two threads per direction per connection: the control
/// plane carries a handful of connections, and plain threads keep the timing honest.
public final class FaultProxy: Sendable {
    public let port: Int
    private let listener: Int32
    private struct Settings {
        var targetPort: Int
        var mode: NetworkMode?
        var direction: Direction = .both
        var connections: [ObjectIdentifier: ProxyConnection] = [:]
        var closed = false
    }
    private let settings: Mutex<Settings>
    /// Every loop of the proxy ends by then at the latest (the run's bound, with a margin).
    let deadline: Date

    /// Listens on 127.0.0.1 (any free port) and forwards to 127.0.0.1:`targetPort` for at most `lifetime` seconds.
    public init(targetPort: Int, lifetime: TimeInterval = 3_600) throws {
        settings = Mutex(Settings(targetPort: targetPort))
        deadline = Date().addingTimeInterval(lifetime)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SupervisorError("proxy: socket() failed: errno \(errno)") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = Self.loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 64) == 0 else {
            Glibc.close(fd)
            throw SupervisorError("proxy: cannot listen on 127.0.0.1: errno \(errno)")
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        listener = fd
        port = Int(UInt16(bigEndian: actual.sin_port))
        let thread = Thread { [weak self] in self?.acceptLoop() }
        thread.name = "fault-proxy-accept"
        thread.start()
    }

    static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        return address
    }

    /// Where new connections go (the coordinator restarted on another port).
    public func setTarget(port: Int) { settings.withLock { $0.targetPort = port } }

    /// Starts misbehaving. `.reset` resets every open connection at once.
    public func apply(_ mode: NetworkMode, direction: Direction) {
        let open: [ProxyConnection] = settings.withLock {
            $0.mode = mode
            $0.direction = direction
            return Array($0.connections.values)
        }
        if mode == .reset { for c in open { c.reset() } }
    }

    /// Back to passing everything through.
    public func heal() { settings.withLock { $0.mode = nil } }

    /// The fault acting on bytes going `upstream` (worker to coordinator) or not, if any.
    func fault(upstream: Bool) -> NetworkMode? {
        settings.withLock {
            guard let mode = $0.mode else { return nil }
            switch $0.direction {
            case .both: return mode
            case .upstream: return upstream ? mode : nil
            case .downstream: return upstream ? nil : mode
            }
        }
    }

    /// Closed, or past its lifetime.
    var isClosed: Bool { settings.withLock { $0.closed } || Date() > deadline }

    public func close() {
        let (open, wasClosed): ([ProxyConnection], Bool) = settings.withLock { s in
            defer { s.closed = true }
            return (Array(s.connections.values), s.closed)
        }
        guard !wasClosed else { return }  // closing the listener twice could close a reused descriptor
        shutdown(listener, Int32(SHUT_RDWR))
        Glibc.close(listener)
        for c in open { c.reset() }
    }

    func remove(_ connection: ProxyConnection) {
        _ = settings.withLock { $0.connections.removeValue(forKey: ObjectIdentifier(connection)) }
    }

    private func acceptLoop() {
        while !isClosed {
            let client = accept(listener, nil, nil)
            if client < 0 {
                if errno == EINTR { continue }
                return  // the listener was closed
            }
            let (target, resetting) = settings.withLock { ($0.targetPort, $0.mode == .reset) }
            if resetting {
                ProxyConnection.abort(client)
                continue
            }
            let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = Self.loopback(port: target)
            let connected = upstream >= 0 && withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            } == 0
            guard connected else {
                // The coordinator is down: refuse the worker as the coordinator itself would.
                if upstream >= 0 { Glibc.close(upstream) }
                ProxyConnection.abort(client)
                continue
            }
            let connection = ProxyConnection(client: client, upstream: upstream, proxy: self)
            settings.withLock { $0.connections[ObjectIdentifier(connection)] = connection }
            connection.start()
        }
    }
}

/// One proxied connection: a pump each way, each a reader thread and a writer thread around a queue.
// @unchecked: the queues and flags are guarded by `condition` (an NSCondition, which the compiler
// cannot tie to the fields); the descriptors are immutable, `proxy` is a weak back-reference.
final class ProxyConnection: @unchecked Sendable {
    private let client: Int32
    private let upstream: Int32
    private weak var proxy: FaultProxy?
    private let condition = NSCondition()
    private var queues: [[Chunk]] = [[], []]  // 0: upstream (client -> coordinator), 1: downstream
    private var readDone = [false, false]
    private var threadsLeft = 4
    private var aborted = false
    private let deadline: Date

    struct Chunk {
        var bytes: [UInt8]
        /// Not to be written before this (delay); `.distantPast` when not delayed.
        var due: Date
    }

    init(client: Int32, upstream: Int32, proxy: FaultProxy) {
        self.client = client
        self.upstream = upstream
        self.proxy = proxy
        deadline = proxy.deadline
        var one: Int32 = 1
        setsockopt(client, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        setsockopt(upstream, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    func start() {
        for (index, (from, to)) in [(client, upstream), (upstream, client)].enumerated() {
            let reader = Thread { [self] in read(from: from, queue: index) }
            let writer = Thread { [self] in write(to: to, queue: index) }
            reader.name = "fault-proxy-read"
            writer.name = "fault-proxy-write"
            reader.start()
            writer.start()
        }
    }

    /// Closes a socket with an RST (SO_LINGER 0) rather than a FIN.
    static func abort(_ fd: Int32) {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        Glibc.close(fd)
    }

    /// Resets both sides: wakes every thread; the last one out closes both sockets with an RST.
    func reset() {
        condition.lock()
        aborted = true
        condition.broadcast()
        condition.unlock()
        shutdown(client, Int32(SHUT_RD))
        shutdown(upstream, Int32(SHUT_RD))
    }

    /// Reset, or the proxy is closed or past its lifetime.
    private var isAborted: Bool {
        condition.lock()
        let reset = aborted
        condition.unlock()
        return reset || proxy?.isClosed ?? true
    }

    private func read(from fd: Int32, queue: Int) {
        defer { finish() }
        var buffer = [UInt8](repeating: 0, count: 16_384)
        let upstreamward = queue == 0
        while !isAborted {
            // A blackhole stops reading, so that the sender's buffers fill as on a dead link.
            if proxy?.fault(upstream: upstreamward) == .blackhole {
                usleep(20_000)
                continue
            }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            var due = Date.distantPast
            if case let .delay(ms, jitter)? = proxy?.fault(upstream: upstreamward) {
                let spread = jitter > 0 ? Int.random(in: -jitter...jitter) : 0
                due = Date().addingTimeInterval(Double(max(0, ms + spread)) / 1_000)
            }
            condition.lock()
            if n <= 0 {
                readDone[queue] = true
            } else {
                // Keep order: a chunk is never due before the one ahead of it.
                if let last = queues[queue].last, last.due > due { due = last.due }
                queues[queue].append(Chunk(bytes: Array(buffer[0..<n]), due: due))
            }
            condition.broadcast()
            condition.unlock()
            if n <= 0 { return }
        }
    }

    private func write(to fd: Int32, queue: Int) {
        defer { finish() }
        let upstreamward = queue == 0
        while !isAborted {
            condition.lock()
            while queues[queue].isEmpty && !readDone[queue] && !aborted && Date() < deadline {
                _ = condition.wait(until: Date().addingTimeInterval(0.1))
            }
            if aborted || (queues[queue].isEmpty && readDone[queue]) {
                let clean = !aborted
                condition.unlock()
                if clean { shutdown(fd, Int32(SHUT_WR)) }  // pass the FIN on
                return
            }
            guard let chunk = queues[queue].first else {  // woken by the deadline: the loop checks it
                condition.unlock()
                continue
            }
            condition.unlock()
            let fault = proxy?.fault(upstream: upstreamward)
            if fault == .blackhole || chunk.due > Date() {
                usleep(5_000)
                continue
            }
            condition.lock()
            queues[queue].removeFirst()
            condition.unlock()
            var sliceSize = chunk.bytes.count
            if case let .bandwidth(bps)? = fault { sliceSize = max(1, bps / 20) }  // 50 ms worth at a time
            var sent = 0
            while sent < chunk.bytes.count && !isAborted {
                let end = min(chunk.bytes.count, sent + sliceSize)
                let n = chunk.bytes[sent..<end].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 {
                    reset()
                    return
                }
                sent += n
                if case let .bandwidth(bps)? = proxy?.fault(upstream: upstreamward) {
                    usleep(useconds_t(min(1_000_000, n * 1_000_000 / max(1, bps))))
                }
            }
        }
    }

    /// The last of the four threads closes both sockets (with an RST after a reset).
    private func finish() {
        condition.lock()
        threadsLeft -= 1
        let last = threadsLeft == 0
        let wasAborted = aborted
        condition.unlock()
        guard last else { return }
        if wasAborted {
            Self.abort(client)
            Self.abort(upstream)
        } else {
            Glibc.close(client)
            Glibc.close(upstream)
        }
        proxy?.remove(self)
    }
}
