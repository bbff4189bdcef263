import Foundation
import Logging
import SluiceStorage
#if canImport(Glibc)
import Glibc
#endif

/// The PostgreSQL server of a `store: postgres` suite, and the fresh database the run uses on it.
///
/// `store: postgres`: a throwaway server the harness starts itself (the same steps as
/// scripts/postgres-test-server: initdb in a temporary directory, as the `postgres` user when run
/// as root, `wal_level=logical`, a free loopback port, trust authentication on loopback), stopped
/// and removed at the end; `restart_store` stops it with `pg_ctl stop -m immediate` and starts it
/// again. `store: postgres://…`: that server (on loopback: the workers reach it through fault
/// proxies on 127.0.0.1), where the harness only creates a database.
final class ChaosPostgres: Sendable {
    /// The run's database (`postgres://USER@127.0.0.1:PORT/sluice_chaos_…`).
    let databaseURL: String
    let database: String
    /// Where the server listens (the fault proxies forward there).
    let port: Int
    private let bin: String?
    private let owned: (dir: String, data: String)?

    private init(databaseURL: String, database: String, port: Int, bin: String?, owned: (dir: String, data: String)?) {
        self.databaseURL = databaseURL
        self.database = database
        self.port = port
        self.bin = bin
        self.owned = owned
    }

    /// Starts a throwaway server and creates the run's database on it.
    static func startThrowaway(database: String, logger: Logger) throws -> ChaosPostgres {
        guard let bin = binaries() else {
            throw ChaosRefusal("store: postgres needs PostgreSQL's server binaries (initdb, pg_ctl) under /usr/lib/postgresql/*/bin: "
                               + "`apt-get install -y postgresql`, or give the suite a server: `store: postgres://USER@127.0.0.1:PORT/DB`")
        }
        let dir = (NSTemporaryDirectory() as NSString).appendingPathComponent("sluice-chaos-pg-\(UUID().uuidString.prefix(8).lowercased())")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        if getuid() == 0 { try ShellCommand.check(["chown", "postgres:", dir]) }
        let data = (dir as NSString).appendingPathComponent("data")
        try ShellCommand.check([bin + "/initdb", "-D", data, "-U", "postgres", "-A", "trust", "--no-sync"], asPostgresUser: true)
        var lastError = ""
        for _ in 0..<5 {
            let port = try freePort()
            // Appended settings win over the defaults above them. fsync off risks data only on an OS
            // crash; synchronous_commit stays on, so a server killed by `stop -m immediate` keeps
            // every commit it acknowledged (the fenced commit relies on that).
            let settings = """

                listen_addresses = '127.0.0.1'
                port = \(port)
                unix_socket_directories = '\(dir)'
                wal_level = logical
                max_connections = 200
                fsync = off
                full_page_writes = off
                """
            try ShellCommand.check(["sh", "-c", "printf '%s\\n' \"$0\" >> \"$1\"", settings, data + "/postgresql.conf"], asPostgresUser: true)
            let started = try ShellCommand.run([bin + "/pg_ctl", "-D", data, "-l", dir + "/log", "-w", "-t", "60", "start"], asPostgresUser: true)
            if started.status == 0 {
                let base = "postgres://postgres@127.0.0.1:\(port)/postgres"
                let server = ChaosPostgres(databaseURL: Self.replacingDatabase(in: base, with: database), database: database,
                                           port: port, bin: bin, owned: (dir, data))
                try server.createDatabase(base: base)
                logger.info("PostgreSQL \((bin as NSString).deletingLastPathComponent) on 127.0.0.1:\(port) (data in \(data))")
                return server
            }
            lastError = started.output
        }
        throw ChaosRefusal("could not start a PostgreSQL server in \(dir): \(lastError.suffix(600))")
    }

    /// Uses the server at `url` (on loopback, with a port), creating the run's database there.
    static func external(url: String, database: String) throws -> ChaosPostgres {
        let parsed = try PostgresURL(url)
        let hostPort = parsed.target.split(separator: "/", maxSplits: 1).first.map(String.init) ?? ""
        let parts = hostPort.split(separator: ":")
        guard parts.count == 2, ["127.0.0.1", "localhost"].contains(String(parts[0])), let port = Int(parts[1]) else {
            throw ChaosRefusal("store: \(parsed.redacted): the harness puts fault proxies on 127.0.0.1 in front of the server, so it must be "
                               + "on loopback with an explicit port: postgres://USER@127.0.0.1:PORT/DB")
        }
        let server = ChaosPostgres(databaseURL: replacingDatabase(in: url, with: database), database: database, port: port,
                                   bin: binaries(), owned: nil)
        try server.createDatabase(base: url)
        return server
    }

    private func createDatabase(base: String) throws {
        let conn = try PostgresConnection(url: PostgresURL(base))
        try conn.execute("CREATE DATABASE \(database)")
    }

    /// The URL through which a worker reaches the database via its fault proxy on `proxyPort`. It
    /// names the same database (so the sink accepts it as its checkpoint store); libpq takes the
    /// `host` and `port` parameters over the ones in the URL.
    static func url(_ url: String, throughProxyPort proxyPort: Int) -> String {
        url + (url.contains("?") ? "&" : "?") + "host=127.0.0.1&port=\(proxyPort)"
    }

    var canRestart: Bool { owned != nil }

    /// `pg_ctl stop -m immediate`: every backend killed, no shutdown checkpoint (a crash, as far
    /// as clients can tell).
    func stopImmediately() throws {
        guard let owned, let bin else { throw ChaosRefusal("the harness did not start this server, so it cannot stop it") }
        try ShellCommand.check([bin + "/pg_ctl", "-D", owned.data, "-m", "immediate", "-w", "stop"], asPostgresUser: true)
    }

    /// Starts the stopped server again (crash recovery replays its WAL).
    func startAgain() throws {
        guard let owned, let bin else { throw ChaosRefusal("the harness did not start this server, so it cannot start it") }
        try ShellCommand.check([bin + "/pg_ctl", "-D", owned.data, "-l", owned.dir + "/log", "-w", "-t", "60", "start"], asPostgresUser: true)
    }

    /// `pg_dump` of the run's database (every Sluice table and the sink's) into `path`, so that the
    /// run can be verified again on any server. Returns a line for the log.
    func dump(to path: String) -> String {
        let pgDump = bin.map { $0 + "/pg_dump" } ?? "pg_dump"
        do {
            try ShellCommand.check([pgDump, "--no-owner", "--no-privileges", "-d", databaseURL, "-f", path])
            return "pg_dump of \(database) in \(path)"
        } catch {
            return "pg_dump failed: \(error)"
        }
    }

    /// Stops a server the harness started, keeps its log in `logPath` and removes its directory.
    func shutDown(keepingLogAt logPath: String) {
        guard let owned, let bin else { return }
        _ = try? ShellCommand.run([bin + "/pg_ctl", "-D", owned.data, "-m", "fast", "-w", "-t", "30", "stop"], asPostgresUser: true)
        try? FileManager.default.removeItem(atPath: logPath)
        try? FileManager.default.copyItem(atPath: owned.dir + "/log", toPath: logPath)
        try? FileManager.default.removeItem(atPath: owned.dir)
    }

    /// The newest PostgreSQL server binaries Debian installs, or nil.
    static func binaries() -> String? {
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).compactMap { Int($0) }.sorted()
        for version in versions.reversed() {
            let bin = "\(root)/\(version)/bin"
            if FileManager.default.isExecutableFile(atPath: bin + "/initdb") { return bin }
        }
        return nil
    }

    /// `postgres://user@host:port/olddb?query` → `postgres://user@host:port/NAME?query`.
    static func replacingDatabase(in url: String, with name: String) -> String {
        guard let schemeEnd = url.range(of: "://") else { return url }
        let afterScheme = url[schemeEnd.upperBound...]
        let hostEnd = afterScheme.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? afterScheme.endIndex
        let tail = url[hostEnd...]
        let query = tail.firstIndex(of: "?").map { String(tail[$0...]) } ?? ""
        return String(url[..<hostEnd]) + "/" + name + query
    }

    /// A port that was free a moment ago on 127.0.0.1.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ChaosRefusal("socket() failed: errno \(errno)") }
        defer { Glibc.close(fd) }
        var address = FaultProxy.loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw ChaosRefusal("cannot bind 127.0.0.1: errno \(errno)") }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: actual.sin_port))
    }
}
