// Configuration a careless user gets wrong, end to end: a store finished by one run is never taken
// as the finished state of another (changed table or input), a table never takes the store's
// names, usage errors exit 2, and SQLite errors name their file.

import Foundation
import SluiceStorage
import Testing

extension SluiceEndToEndTests {
    /// A tumbling job like the default one, writing into `table`.
    private func job(table: String, in scratch: ScratchDir) throws -> String {
        let path = scratch.at("job-\(table).yaml")
        try """
            name: bids
            window: {kind: tumbling, size_ms: 10000}
            aggregates: [count, {sum: price}]
            table: \(table)
            """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("A finished store refuses a rerun with another table or another input, naming what differs")
    func aChangedTableOrInputIsRefused() async throws {
        let scratch = try ScratchDir("rebind")
        defer { scratch.remove() }
        for seed in [1, 2] {
            let gen = try await sluice(["gen", "--seed", "\(seed)", "--events", "20000", "--partitions", "2", "--keys", "50",
                                        "--out", scratch.at("in\(seed)")], scratch: scratch, label: "gen")
            try #require(gen.exitedWith0, "\(gen)")
        }
        let output = "sqlite:" + scratch.at("out.db")
        let first = try job(table: "first", in: scratch)
        let done = try await sluice(["run", "--job", first, "--input", "file:" + scratch.at("in1"), "--output", output, "--quiet"],
                                    scratch: scratch, label: "run")
        try #require(done.exitedWith0, "\(done)")

        // Only the table changed: before, this printed "0 events … 0 commits", exited 0 and left
        // the new table empty.
        let second = try job(table: "second", in: scratch)
        let newTable = try await sluice(["run", "--job", second, "--input", "file:" + scratch.at("in1"), "--output", output, "--quiet"],
                                        scratch: scratch, label: "run-table")
        #expect(newTable.status == 2 && !newTable.signaled, "\(newTable)")
        #expect(newTable.stderr.contains("table: stored first, this run second"), "\(newTable)")

        // Another input with the same partition count: before, exit 0 with the old input's results.
        let newInput = try await sluice(["run", "--job", first, "--input", "file:" + scratch.at("in2"), "--output", output, "--quiet"],
                                        scratch: scratch, label: "run-input")
        #expect(newInput.status == 2 && !newInput.signaled, "\(newInput)")
        #expect(newInput.stderr.contains("input: stored file:" + scratch.at("in1")), "\(newInput)")
        #expect(!newInput.stderr.contains("table:"), "only the input differs: \(newInput)")

        // The same run again is accepted (nothing left to do), and its output still verifies.
        let again = try await sluice(["run", "--job", first, "--input", "file:" + scratch.at("in1"), "--output", output, "--quiet"],
                                     scratch: scratch, label: "run-again")
        #expect(again.exitedWith0, "\(again)")
        let verify = try await sluice(["verify", "--job", first, "--input", "file:" + scratch.at("in1"), "--output", output],
                                      scratch: scratch, label: "verify")
        #expect(verify.exitedWith0, "\(verify)")
    }

    @Test("A results table named like the store's own is refused before anything is written")
    func aTableWithTheStoresNameIsRefused() async throws {
        let scratch = try ScratchDir("store-names")
        defer { scratch.remove() }
        for table in ["sluice_checkpoints", "sluice_meta"] {
            let run = try await sluice(["run", "--job", try job(table: table, in: scratch), "--input",
                                        "gen:seed=1,events=1000,partitions=2,keys=10", "--output", "sqlite:" + scratch.at("\(table).db"), "--quiet"],
                                       scratch: scratch, label: "run-\(table)")
            #expect(run.status == 2 && !run.signaled, "\(run)")
            #expect(run.stderr.contains("table: '\(table)' starts with 'sluice_'"), "\(run)")
            #expect(!FileManager.default.fileExists(atPath: scratch.at("\(table).db")), "a database was created for a refused job")
        }
    }

    @Test("Usage errors exit 2 with a message naming the flag", arguments: [
        (["run", "--rate", "-5", "--input", "gen:", "--output", "sqlite:x.db"], "--rate"),
        (["run", "--rate=-5", "--input", "gen:", "--output", "sqlite:x.db"], "--rate"),
        (["gen", "--events", "-1", "--out", "x"], "events"),
        (["gen", "--events=-1", "--out", "x"], "events must be >= 0"),
        (["coordinator", "--listen", "127.0.0.1:99999", "--input", "gen:", "--output", "sqlite:x.db", "--insecure"], "--listen"),
        (["run", "--no-such-flag"], "--no-such-flag"),
        (["run", "--parallelism", "many"], "--parallelism"),
    ])
    func usageErrorsExit2(arguments: [String], says: String) async throws {
        let scratch = try ScratchDir("usage")
        defer { scratch.remove() }
        let result = try await sluice(arguments, scratch: scratch, label: "usage")
        #expect(result.status == 2 && !result.signaled, "\(result)")
        #expect(result.stderr.contains(says), "\(result)")
    }

    @Test("Help still exits 0")
    func helpExits0() async throws {
        let scratch = try ScratchDir("help")
        defer { scratch.remove() }
        let result = try await sluice(["run", "--help"], scratch: scratch, label: "help")
        #expect(result.exitedWith0, "\(result)")
        #expect(result.stdout.contains("--rate"), "\(result)")
    }

    @Test("A file that is not a SQLite database is named in the error, with exit 2")
    func aForeignFileAsTheSQLiteSinkIsNamed() async throws {
        let scratch = try ScratchDir("not-a-db")
        defer { scratch.remove() }
        let path = scratch.at("notes.db")
        let text = String(repeating: "my notes, not a database\n", count: 100)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let run = try await sluice(["run", "--input", "gen:seed=1,events=1000,partitions=2,keys=10", "--output", "sqlite:" + path, "--quiet"],
                                   scratch: scratch, label: "run")
        #expect(run.status == 2 && !run.signaled, "\(run)")
        #expect(run.stderr.contains("'\(path)'") && run.stderr.contains("not a SQLite database"), "\(run)")
        #expect(try String(contentsOfFile: path, encoding: .utf8) == text, "the foreign file was changed")
    }
}
