// A password in a PostgreSQL URL never reaches a log line: `sluice run` against the test server
// with a password in its --output URL, at the most verbose level, and once against a database that
// does not exist (the error path names the URL); neither output holds the password.

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension SluiceEndToEndTests.PostgresTests {
    /// `postgres://USER@HOST…` → `postgres://USER:PASSWORD@HOST…` (the test server trusts loopback,
    /// so any password is accepted, and libpq sends it only if asked).
    static func withPassword(_ url: String, _ password: String) throws -> String {
        guard let scheme = url.range(of: "://"), let at = url[scheme.upperBound...].firstIndex(of: "@") else {
            throw TestSetupError("no user in the test server's URL")
        }
        let user = url[scheme.upperBound..<at]
        guard !user.contains(":") else { return url }
        return String(url[..<at]) + ":" + password + String(url[at...])
    }

    @Test("No log line of sluice run holds the password of its PostgreSQL URL (text and JSON, trace level, success and failure)",
          .timeLimit(.minutes(4)))
    func passwordNeverLogged() async throws {
        let password = "Pw-\(UUID().uuidString.prefix(12))"
        let scratch = try ScratchDir("pg-secrets")
        defer { scratch.remove() }
        let input = "gen:seed=3,events=20000,partitions=2,keys=100"
        for format in ["text", "json"] {
            let url = try Self.withPassword(try TestPostgres.freshDatabase("secrets_\(format)"), password)
            let run = try await sluice(["run", "--input", input, "--output", url, "--log-level", "trace", "--log-format", format, "--quiet"],
                                       scratch: scratch, label: "run-\(format)")
            #expect(run.exitedWith0, "\(run)")
            #expect(!run.stdout.contains(password) && !run.stderr.contains(password), "the password was printed: \(run)")
        }
        // A database that does not exist: the store retries, logging the URL each time, until stopped
        // (a second SIGTERM ends it at once, even inside the blocking retries).
        let url = try Self.withPassword(try TestPostgres.baseURL(), password)
        guard let slash = url.range(of: "/", options: .backwards) else { throw TestSetupError("no database in the URL") }
        let missing = String(url[..<slash.upperBound]) + "sluice_no_such_db_\(UUID().uuidString.prefix(6).lowercased())"
        let child = try Child(["run", "--input", input, "--output", missing, "--log-level", "trace", "--quiet"],
                              scratch: scratch, label: "run-missing-db")
        var retried = false
        for _ in 0..<300 where child.isRunning {  // at most ~30 s
            if Child.read(child.stderrPath).contains("retry 2 ") { retried = true; break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(retried, "no retry lines: \(Child.read(child.stderrPath).suffix(2_000))")
        child.signal(SIGTERM)
        try await Task.sleep(for: .milliseconds(300))
        child.signal(SIGTERM)
        let failed = await child.wait(timeout: .seconds(20))
        #expect(!failed.timedOut && !failed.signaled && failed.status == 128 + SIGTERM, "\(failed)")
        #expect(failed.stderr.contains("sluice_no_such_db"), "the retries should name the database: \(failed)")
        #expect(!failed.stdout.contains(password) && !failed.stderr.contains(password), "the password was printed: \(failed)")
        print("[pg secrets] error line: \(failed.stderr.split(separator: "\n").last ?? "")")
    }
}
