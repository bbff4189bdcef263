// The PostgreSQL server the tests run against: `scripts/postgres-test-server start` (run by
// scripts/test) exports SLUICE_TEST_POSTGRES_URL, and its data directory and binaries for the
// restart test. Without the URL every test here FAILS with instructions, unless
// SLUICE_SKIP_POSTGRES_TESTS=1 says to skip them (a machine without PostgreSQL, on purpose).

import Foundation
import SluiceStorage
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension SluiceEndToEndTests {
    /// Every PostgreSQL test is in this suite (tests in extensions over several files), inside the
    /// serialized end-to-end suite: they share one server, and one of them stops and restarts it.
    @Suite(.enabled(if: !TestPostgres.skipped, "SLUICE_SKIP_POSTGRES_TESTS=1: PostgreSQL tests skipped on purpose"))
    struct PostgresTests {}
}

enum TestPostgres {
    static let environment = ProcessInfo.processInfo.environment

    static var skipped: Bool { environment["SLUICE_SKIP_POSTGRES_TESTS"] == "1" }

    /// The server's URL (database `postgres`); throws, failing the test, when it is not set.
    static func baseURL() throws -> String {
        guard let url = environment["SLUICE_TEST_POSTGRES_URL"], !url.isEmpty else {
            throw TestSetupError("""
                SLUICE_TEST_POSTGRES_URL is not set, so there is no PostgreSQL server to test against.
                Run scripts/test (it starts a throwaway server), or:
                  scripts/postgres-test-server start && eval "$(scripts/postgres-test-server env)" && swift test --filter PostgresTests
                To skip these tests on purpose, set SLUICE_SKIP_POSTGRES_TESTS=1.
                """)
        }
        return url
    }

    /// A new, empty database on the test server; returns its URL. Tests never share one.
    static func freshDatabase(_ label: String) throws -> String {
        let base = try baseURL()
        let name = "sluice_\(label)_\(UUID().uuidString.prefix(8).lowercased())"
        let conn = try PostgresConnection(url: PostgresURL(base))
        try conn.execute("CREATE DATABASE \(name)")
        // postgres://user@host:port/dbname?query: swap the dbname.
        guard let schemeEnd = base.range(of: "://") else { throw TestSetupError("not a URL: \(PostgresURL.redact(base))") }
        let afterScheme = base[schemeEnd.upperBound...]
        let hostEnd = afterScheme.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? afterScheme.endIndex
        let tail = base[hostEnd...]
        let query = tail.firstIndex(of: "?").map { String(tail[$0...]) } ?? ""
        return String(base[..<hostEnd]) + "/" + name + query
    }

    /// One connection to `url` (tests inspect tables directly).
    static func connect(_ url: String) throws -> PostgresConnection {
        try PostgresConnection(url: PostgresURL(url))
    }

    // MARK: stopping and starting the server (the outage test)

    private static func pgCtl(_ arguments: [String]) throws -> (status: Int32, output: String) {
        guard let data = environment["SLUICE_TEST_POSTGRES_DATA"], let bin = environment["SLUICE_TEST_POSTGRES_BIN"] else {
            throw TestSetupError("SLUICE_TEST_POSTGRES_DATA / SLUICE_TEST_POSTGRES_BIN are not set: start the server with scripts/postgres-test-server and eval its env")
        }
        let pgctl = (bin as NSString).appendingPathComponent("pg_ctl")
        // As root, the cluster belongs to the postgres user (initdb refuses root).
        let command = (getuid() == 0 ? ["/usr/sbin/runuser", "-u", "postgres", "--"] : []) + [pgctl, "-D", data] + arguments
        // posix_spawn and waitpid rather than Foundation's Process: the server pg_ctl starts inherits
        // the child's descriptors, and Process's exit monitoring was seen to miss pg_ctl's exit here.
        // The output goes to a file through sh, never to a pipe the server would hold open.
        let outputPath = NSTemporaryDirectory() + "sluice-pg-ctl-\(UUID().uuidString).out"
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        let shell = command.map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
            + " >'\(outputPath)' 2>&1 </dev/null"
        let words: [String] = ["/bin/sh", "-c", shell]
        let argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, "/bin/sh", nil, nil, argv, environ)
        guard spawned == 0 else { throw TestSetupError("cannot start pg_ctl: errno \(spawned)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { throw TestSetupError("waitpid for pg_ctl: errno \(errno)") }
        }
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        let exited = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return (exited, text)
    }

    /// `pg_ctl stop -m immediate`: no shutdown checkpoint, every connection cut (a crash, as far
    /// as clients can tell).
    static func stopImmediately() throws {
        let r = try pgCtl(["-m", "immediate", "-w", "stop"])
        guard r.status == 0 else { throw TestSetupError("pg_ctl stop failed: \(r.output)") }
    }

    static func start() throws {
        let logFile = ((environment["SLUICE_TEST_POSTGRES_DATA"] ?? "/tmp") as NSString).deletingLastPathComponent + "/log"
        let r = try pgCtl(["-l", logFile, "-w", "-t", "60", "start"])
        guard r.status == 0 else { throw TestSetupError("pg_ctl start failed: \(r.output)") }
    }
}

struct TestSetupError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
