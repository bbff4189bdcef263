#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A TCP socket bound to its address but not yet listening: binding it first lets a process
/// refuse a taken or foreign address with a clear error before it starts anything else. The
/// server that takes the descriptor (NIO, gRPC) listens on it and owns it from then on.
public struct BoundSocket: Sendable {
    public let descriptor: Int32
    public let host: String
    /// The bound port (the chosen one, for port 0).
    public let port: Int

    /// Binds `host:port` (an IPv4 address; port 0: any free port). `option` names the flag the
    /// address came from, for the error.
    public static func bind(host: String, port: Int, option: String) throws -> BoundSocket {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(truncatingIfNeeded: port).bigEndian)
        guard inet_pton(AF_INET, host, &addr.sin_addr) == 1 else {
            throw ListenError("\(option) \(host):\(port): the host must be an IPv4 address of this machine (for example 127.0.0.1, or 0.0.0.0 for all)")
        }
        #if canImport(Glibc)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw ListenError("cannot listen on \(host):\(port) (\(option)): socket() failed: \(errorText(errno))") }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sockaddrPointer in
                #if canImport(Glibc)
                Glibc.bind(fd, sockaddrPointer, socklen_t(MemoryLayout<sockaddr_in>.size))
                #else
                Darwin.bind(fd, sockaddrPointer, socklen_t(MemoryLayout<sockaddr_in>.size))
                #endif
            }
        }
        guard bound == 0 else {
            let code = errno
            close(fd)
            let hint: String
            switch code {
            case EADDRINUSE: hint = "another process (another coordinator?) listens there; stop it or choose another port"
            case EADDRNOTAVAIL: hint = "this machine has no such address; use one of its addresses, or 0.0.0.0"
            case EACCES: hint = "ports below 1024 need privileges; choose a higher port"
            default: hint = "choose another address"
            }
            throw ListenError("cannot listen on \(host):\(port) (\(option)): \(errorText(code)); \(hint)")
        }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        let actual = named == 0 ? Int(UInt16(bigEndian: addr.sin_port)) : port
        return BoundSocket(descriptor: fd, host: host, port: actual)
    }

    /// "address already in use", from the C library's text.
    private static func errorText(_ code: Int32) -> String {
        String(cString: strerror(code)).lowercased()
    }
}

public struct ListenError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The process's limit of open files. Each connection takes a descriptor; a limit of 1,024 (a
/// common default) let 1,100 idle connections lock everyone out.
public enum OpenFileLimit {
    /// The current soft limit.
    public static var current: Int {
        var limit = rlimit()
        guard getrlimit(resourceNOFILE, &limit) == 0 else { return 1_024 }
        return limit.rlim_cur == rlim_t.max ? Int(Int32.max) : Int(clamping: limit.rlim_cur)
    }

    /// Raises the soft limit to the hard one (at most `wanted`); returns a line for the log when
    /// the limit stays below `wanted`, nil when it is fine.
    public static func raise(wanted: Int = 16_384) -> String? {
        var limit = rlimit()
        guard getrlimit(resourceNOFILE, &limit) == 0 else { return "cannot read the open-file limit; connections may run out of descriptors" }
        let target = min(rlim_t(wanted), limit.rlim_max)
        if limit.rlim_cur < target {
            var raised = limit
            raised.rlim_cur = target
            if setrlimit(resourceNOFILE, &raised) == 0 { limit = raised }
        }
        guard limit.rlim_cur < rlim_t(wanted) else { return nil }
        return "open-file limit is \(limit.rlim_cur) (hard limit \(limit.rlim_max)) and cannot be raised to \(wanted): "
            + "at most \(ConnectionLimits.pendingCap(openFiles: Int(limit.rlim_cur))) unauthenticated connections per port are kept; "
            + "raise it with `ulimit -n` or LimitNOFILE= (systemd) for more"
    }

    #if canImport(Glibc)
    private static let resourceNOFILE = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    #else
    private static let resourceNOFILE = RLIMIT_NOFILE
    #endif
}
