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
        let process = Process()
        let pgctl = (bin as NSString).appendingPathComponent("pg_ctl")
        if getuid() == 0 {  // the cluster belongs to the postgres user (initdb refuses root)
            process.executableURL = URL(fileURLWithPath: "/usr/sbin/runuser")
            process.arguments = ["-u", "postgres", "--", pgctl, "-D", data] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: pgctl)
            process.arguments = ["-D", data] + arguments
        }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
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
