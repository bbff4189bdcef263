import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Runs a short command to completion and returns its exit status and output.
///
/// posix_spawn and waitpid rather than Foundation's Process: `pg_ctl start` leaves a server behind
/// that inherits the child's descriptors, and Process's exit monitoring was seen to miss pg_ctl's
/// exit here (Tests/SluiceEndToEndTests/Postgres/TestPostgres.swift). The output goes to a file
/// through `sh`, never to a pipe that the server would hold open.
enum ShellCommand {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// `command` run as given; as root with `asPostgresUser`, through `runuser -u postgres --`
    /// (initdb and pg_ctl refuse to run as root).
    static func run(_ command: [String], asPostgresUser: Bool = false) throws -> (status: Int32, output: String) {
        let command = (asPostgresUser && getuid() == 0 ? ["/usr/sbin/runuser", "-u", "postgres", "--"] : []) + command
        let outputPath = NSTemporaryDirectory() + "sluice-chaos-cmd-\(UUID().uuidString).out"
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        let shell = command.map(quote).joined(separator: " ") + " >\(quote(outputPath)) 2>&1 </dev/null"
        let words: [String] = ["/bin/sh", "-c", shell]
        let argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, "/bin/sh", nil, nil, argv, environ)
        guard spawned == 0 else { throw Failure(description: "cannot start \(command.first ?? "a command"): errno \(spawned)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { throw Failure(description: "waitpid for \(command.first ?? "a command"): errno \(errno)") }
        }
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        let exited = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return (exited, text)
    }

    /// Like `run`, but a non-zero exit throws with the command's output.
    @discardableResult
    static func check(_ words: [String], asPostgresUser: Bool = false) throws -> String {
        let result = try run(words, asPostgresUser: asPostgresUser)
        guard result.status == 0 else {
            throw Failure(description: "\((words.first as NSString?)?.lastPathComponent ?? "command") exited \(result.status): "
                          + result.output.trimmingCharacters(in: .whitespacesAndNewlines).suffix(600))
        }
        return result.output
    }

    static func quote(_ word: String) -> String {
        "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
