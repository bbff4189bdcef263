import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// One fault command of `sluice dev kafka`'s control socket: a line of words.
public enum KafkaMockCommand: Equatable, Sendable {
    case brokerDown(Int)
    case brokerUp(Int)
    case leader(topic: String, partition: Int, broker: Int)
    case requestErrors(apiKey: Int16, count: Int, error: Int32)
    case createTopic(name: String, partitions: Int)
    /// Makes a broker the coordinator of a transactional id (`transaction`) or a consumer group
    /// (`group`): the mock elects none by itself when a broker goes down.
    case coordinator(type: String, key: String, broker: Int)

    public static let usage = "broker-down ID | broker-up ID | leader TOPIC PARTITION BROKER | "
        + "request-errors APIKEY COUNT ERRORCODE | create-topic NAME PARTITIONS | coordinator transaction|group KEY BROKER"

    public struct ParseError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Parses `broker-down 2`, `leader orders 0 3`, …; the words are separated by spaces or tabs.
    public init(parsing line: String) throws(ParseError) {
        let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }).map(String.init)
        func int(_ index: Int, _ what: String, _ range: ClosedRange<Int>) throws(ParseError) -> Int {
            guard let value = Int(words[index]), range.contains(value) else {
                throw ParseError(description: "\(what) must be an integer in \(range.lowerBound)…\(range.upperBound), got '\(words[index])'")
            }
            return value
        }
        func arity(_ n: Int, _ form: String) throws(ParseError) {
            guard words.count == n + 1 else { throw ParseError(description: "usage: \(form)") }
        }
        switch words.first {
        case "broker-down":
            try arity(1, "broker-down ID")
            self = .brokerDown(try int(1, "ID", 1...Int(Int32.max)))
        case "broker-up":
            try arity(1, "broker-up ID")
            self = .brokerUp(try int(1, "ID", 1...Int(Int32.max)))
        case "leader":
            try arity(3, "leader TOPIC PARTITION BROKER")
            self = .leader(topic: words[1], partition: try int(2, "PARTITION", 0...Int(Int32.max)),
                           broker: try int(3, "BROKER", 1...Int(Int32.max)))
        case "request-errors":
            try arity(3, "request-errors APIKEY COUNT ERRORCODE (e.g. request-errors 0 3 7: the next 3 Produce requests fail with REQUEST_TIMED_OUT)")
            self = .requestErrors(apiKey: Int16(try int(1, "APIKEY", 0...Int(Int16.max))), count: try int(2, "COUNT", 1...10_000),
                                  error: Int32(try int(3, "ERRORCODE", Int(Int32.min)...Int(Int32.max))))
        case "create-topic":
            try arity(2, "create-topic NAME PARTITIONS")
            try KafkaMockCommand.checkTopicName(words[1])
            self = .createTopic(name: words[1], partitions: try int(2, "PARTITIONS", 1...10_000))
        case "coordinator":
            try arity(3, "coordinator transaction|group KEY BROKER")
            guard words[1] == "transaction" || words[1] == "group" else {
                throw ParseError(description: "coordinator type must be transaction or group, got '\(words[1])'")
            }
            self = .coordinator(type: words[1], key: words[2], broker: try int(3, "BROKER", 1...Int(Int32.max)))
        case nil:
            throw ParseError(description: "empty command; commands: \(KafkaMockCommand.usage)")
        case let word?:
            throw ParseError(description: "unknown command '\(word)'; commands: \(KafkaMockCommand.usage)")
        }
    }

    /// Kafka's rule: 1…249 characters of letters, digits, '.', '_' and '-'.
    public static func checkTopicName(_ name: String) throws(ParseError) {
        let allowed = name.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2E || c == 0x5F || c == 0x2D
        }
        guard !name.isEmpty, name.utf8.count <= 249, allowed, name != ".", name != ".." else {
            throw ParseError(description: "topic name '\(name)' is not valid: use 1 to 249 letters, digits, '.', '_' or '-'")
        }
    }
}

/// A mock cluster with the topics it was given, driven by `KafkaMockCommand`s. Commands are
/// checked against the cluster (broker ids, topics, partitions) because the mock itself would
/// accept some bad ones silently (a leader change of an unknown topic creates it).
public final class KafkaMockControl: Sendable {
    public let cluster: KafkaMockCluster
    private let topics = Mutex<[String: Int]>([:])

    public init(cluster: KafkaMockCluster) { self.cluster = cluster }

    /// `ok`, or `error: …` saying why the command was refused or failed.
    public func apply(_ command: KafkaMockCommand) -> String {
        topics.withLock { topics in
            do {
                func broker(_ id: Int) throws -> Int32 {
                    guard (1...cluster.brokers).contains(id) else {
                        throw KafkaError(code: -1, message: "no broker \(id): brokers are 1…\(cluster.brokers)")
                    }
                    return Int32(id)
                }
                switch command {
                case .brokerDown(let id): try cluster.setBroker(Int(try broker(id)), up: false)
                case .brokerUp(let id): try cluster.setBroker(Int(try broker(id)), up: true)
                case .leader(let topic, let partition, let id):
                    guard let count = topics[topic] else { throw KafkaError(code: -1, message: "no topic '\(topic)'") }
                    guard partition < count else {
                        throw KafkaError(code: -1, message: "topic '\(topic)' has partitions 0…\(count - 1), not \(partition)")
                    }
                    try cluster.setLeader(topic: topic, partition: partition, broker: Int(try broker(id)))
                case .requestErrors(let apiKey, let count, let error):
                    cluster.pushRequestErrors(apiKey: apiKey, count: count, error: error)
                case .createTopic(let name, let partitions):
                    guard topics[name] == nil else { throw KafkaError(code: -1, message: "topic '\(name)' exists already") }
                    try cluster.createTopic(name, partitions: partitions)
                    topics[name] = partitions
                case .coordinator(let type, let key, let id):
                    try cluster.setCoordinator(type: type, key: key, broker: Int(try broker(id)))
                }
                return "ok"
            } catch {
                return "error: \(error)"
            }
        }
    }

    /// Parses and applies one line.
    public func apply(line: String) -> String {
        do {
            return apply(try KafkaMockCommand(parsing: line))
        } catch {
            return "error: \(error)"
        }
    }
}

/// The control socket: a Unix stream socket at `path`; each line received is a command, each
/// answered by one line (`ok` or `error: …`). Plain blocking sockets on threads of their own, so
/// nothing blocks Swift's cooperative pool.
public final class KafkaMockControlServer: Sendable {
    public let path: String
    private let listener: Int32
    private let control: KafkaMockControl
    private let stopped = Mutex(false)

    /// Binds and listens at once (the caller can announce the path when this returns). A stale
    /// socket file at `path` is replaced; any other file there is an error.
    public init(path: String, control: KafkaMockControl) throws {
        var address = try unixAddress(path)
        var status = stat()
        if lstat(path, &status) == 0 {
            guard (status.st_mode & S_IFMT) == S_IFSOCK else {
                throw KafkaError(code: -1, message: "--control \(path): a file that is not a socket is in the way; choose another path")
            }
            unlink(path)
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw KafkaError(code: -1, message: "control socket: \(String(cString: strerror(errno)))") }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw KafkaError(code: -1, message: "--control \(path): cannot listen there: \(reason)")
        }
        self.path = path
        listener = fd
        self.control = control
    }

    /// Accepts connections on a thread of its own, each served on another.
    public func start() {
        Thread { [self] in
            while true {
                let client = accept(listener, nil, nil)
                if client < 0 {
                    if errno == EINTR { continue }
                    return  // stopped (the listener was shut down) or broken
                }
                Thread { [self] in serve(client) }.start()
            }
        }.start()
    }

    /// Stops accepting and removes the socket file (connections being served finish their line).
    public func stop() {
        let first = stopped.withLock { stopped in
            defer { stopped = true }
            return !stopped
        }
        guard first else { return }
        shutdown(listener, Int32(SHUT_RDWR))  // wakes the blocked accept
        close(listener)
        unlink(path)
    }

    private func serve(_ fd: Int32) {
        defer { close(fd) }
        var pending: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { return }
            pending += buffer[0..<n]
            while let newline = pending.firstIndex(of: 10) {
                let line = String(decoding: pending[..<newline], as: UTF8.self)
                pending.removeSubrange(...newline)
                guard sendAll(fd, control.apply(line: line) + "\n") else { return }
            }
            if pending.count > 4096 {
                _ = sendAll(fd, "error: line too long\n")
                return
            }
        }
    }

    /// Sends `line` (one command, without its newline) to the control socket at `path` and returns
    /// the answer line (`ok` or `error: …`). Throws when the socket cannot be reached.
    public static func send(_ line: String, to path: String, timeoutSeconds: Int = 30) throws -> String {
        var address = try unixAddress(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw KafkaError(code: -1, message: "socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            throw KafkaError(code: -1, message: "cannot connect to the control socket \(path): \(String(cString: strerror(errno))) (is `sluice dev kafka --control \(path)` running?)")
        }
        guard sendAll(fd, line + "\n") else { throw KafkaError(code: -1, message: "control socket \(path): the send failed") }
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1024)
        while !answer.contains(10) {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { throw KafkaError(code: -1, message: "control socket \(path): no answer") }
            answer += buffer[0..<n]
        }
        return String(decoding: answer.prefix { $0 != 10 }, as: UTF8.self)
    }
}

/// `path` as a Unix socket address; it must fit `sun_path` (107 bytes on Linux).
private func unixAddress(_ path: String) throws -> sockaddr_un {
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    let capacity = MemoryLayout.size(ofValue: address.sun_path)
    guard !bytes.isEmpty, bytes.count < capacity else {
        throw KafkaError(code: -1, message: "--control \(path): a Unix socket path must be 1 to \(capacity - 1) bytes long; choose a shorter one")
    }
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        raw.copyBytes(from: bytes)
        raw[bytes.count] = 0
    }
    return address
}

/// Writes all of `text`; MSG_NOSIGNAL so that a client gone away is an error, not SIGPIPE.
private func sendAll(_ fd: Int32, _ text: String) -> Bool {
    var bytes = Array(text.utf8)[...]
    while !bytes.isEmpty {
        let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if n < 0, errno == EINTR { continue }
        guard n > 0 else { return false }
        bytes = bytes.dropFirst(n)
    }
    return true
}
