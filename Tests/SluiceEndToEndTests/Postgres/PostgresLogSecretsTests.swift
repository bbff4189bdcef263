// A password in a PostgreSQL URL never reaches a log line: `sluice run` against the test server
// with a password in its --output URL, at the most verbose level, and once against a database that
// does not exist (the error path names the URL); neither output holds the password.

import Foundation
import Testing

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
        let url = try Self.withPassword(try TestPostgres.freshDatabase("secrets"), password)
        let scratch = try ScratchDir("pg-secrets")
        defer { scratch.remove() }
        let input = "gen:seed=3,events=20000,partitions=2,keys=100"
        for format in ["text", "json"] {
            let run = try await sluice(["run", "--input", input, "--output", url + "?table=secrets_\(format)",
                                        "--log-level", "trace", "--log-format", format, "--quiet"],
                                       scratch: scratch, label: "run-\(format)")
            #expect(run.exitedWith0, "\(run)")
            #expect(!run.stdout.contains(password) && !run.stderr.contains(password), "the password was printed: \(run)")
        }
        // A database that does not exist: the error names the URL, without the password.
        guard let slash = url.range(of: "/", options: .backwards) else { throw TestSetupError("no database in \(url)") }
        let missing = String(url[..<slash.upperBound]) + "sluice_no_such_db_\(UUID().uuidString.prefix(6).lowercased())"
        let failed = try await sluice(["run", "--input", input, "--output", missing, "--log-level", "trace", "--quiet"],
                                      scratch: scratch, label: "run-missing-db")
        #expect(failed.status == 2 && failed.stderr.contains("sluice_no_such_db"), "\(failed)")
        #expect(!failed.stdout.contains(password) && !failed.stderr.contains(password), "the password was printed: \(failed)")
        print("[pg secrets] error line: \(failed.stderr.split(separator: "\n").last ?? "")")
    }
}
