import Foundation

/// One coordinator process competing for the leadership: `name` (its `--id`, for humans and
/// logs) and `instance`, unique to this candidate, which the lease is held by. Two processes with
/// one name are two candidates, so neither renews or retakes the other's lease.
///
/// An instance is `HOSTKEY PID START NONCE`: the host key is the host name, its boot id and the
/// process's pid namespace; START is the process's start time (in clock ticks since boot). A
/// restarted coordinator may take its namesake's live lease at once only when that instance is
/// provably gone: the same host key, and its pid no longer runs with that start time. A live
/// process, another host's or another container's is never provably gone, so it keeps its lease.
public struct LeaderCandidate: Sendable, Equatable {
    public let name: String
    public let instance: String

    public init(name: String, instance: String = ProcessIdentity.current.newInstance()) {
        self.name = name
        self.instance = instance
    }

    /// Whether the lease of `holder` (its name and instance, as the store shows them) may be taken
    /// before it expires: it is this instance's own, or a same-named predecessor that is gone.
    public func mayTakeOver(holder: String, instance holderInstance: String) -> Bool {
        if holderInstance == instance { return true }
        return holder == name && ProcessIdentity.current.isGone(holderInstance)
    }
}

/// This process as the leadership sees it (Linux; elsewhere no instance is ever provably gone).
public struct ProcessIdentity: Sendable {
    /// Host name, boot id and pid namespace; nil when unreadable.
    public let hostKey: String?
    private let pid: Int32
    private let start: UInt64?

    public static let current = ProcessIdentity()

    private init() {
        pid = getpid()
        let boot = ProcessIdentity.firstLine("/proc/sys/kernel/random/boot_id")
        let namespace = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/pid")
        start = ProcessIdentity.stat(of: pid)?.start
        if let boot, let namespace, start != nil {
            hostKey = "\(ProcessInfo.processInfo.hostName)/\(boot)/\(namespace)".replacingOccurrences(of: " ", with: "_")
        } else {
            hostKey = nil
        }
    }

    /// A new instance of this process (a random nonce makes each one unique).
    public func newInstance() -> String {
        "\(hostKey ?? "unknown-host") \(pid) \(start.map(String.init) ?? "?") \(UUID().uuidString)"
    }

    /// True only when `instance` ran on this host key and its process is gone: no such pid, a
    /// zombie, or a pid reused by a process started at another time.
    public func isGone(_ instance: String) -> Bool {
        let fields = instance.split(separator: " ")
        guard let hostKey, fields.count == 4, fields[0] == hostKey,
              let pid = Int32(fields[1]), let start = UInt64(fields[2]) else { return false }
        guard let stat = ProcessIdentity.stat(of: pid) else { return true }
        return stat.state == "Z" || stat.state == "X" || stat.start != start
    }

    /// The state (field 3) and start time (field 22) of `/proc/PID/stat`.
    private static func stat(of pid: Int32) -> (state: Character, start: UInt64)? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        // After "pid (comm)": state is the first field, start time the twentieth.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 19, let state = fields[0].first, let start = UInt64(fields[19]) else { return nil }
        return (state, start)
    }

    private static func firstLine(_ path: String) -> String? {
        (try? String(contentsOfFile: path, encoding: .utf8))?.split(separator: "\n").first.map(String.init)
    }
}
