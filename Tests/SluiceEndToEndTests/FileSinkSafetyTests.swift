// The sinks never destroy or mix up output that is not theirs, and bad input or configuration
// around them is refused with exit 2 and a message naming the directory, file or flag:
// - a file sink refuses a non-empty directory that is not a Sluice output, and one owned by
//   another job or another checkpoint store, without touching a file in it;
// - a sqlite sink refuses a --state that is another database (results would land elsewhere);
// - an input file that grows while a run reads it fails the run, and no torn line commits;
// - `verify` compares late events and dead letters by their lines, not only their positions;
// - a read-only output directory is a clear error; CRLF input is accepted by engine and oracle.

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A small valid input of two partitions (keys even in partition 0, odd in partition 1); line
/// (0, 1) is malformed and (0, 4) is late.
private enum SmallInput {
    static let partition0 = [
        "2,1,100,1767225600000",
        "garbage one",
        "2,1,250,1767225601000",
        "4,3,500,1767225630000",
        "2,1,700,1767225605000",
        "4,3,20,1767225631000",
    ]
    static let partition1 = ["1,7,300,1767225600000", "1,7,400,1767225609999", "3,7,50,1767225610000"]

    static func write(to directory: String, lineEnd: String = "\n") throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for (name, lines) in [("part-00000.csv", partition0), ("part-00001.csv", partition1)] {
            try (lines.map { $0 + lineEnd }.joined()).write(toFile: (directory as NSString).appendingPathComponent(name),
                                                           atomically: true, encoding: .utf8)
        }
    }
}

/// Every regular file under `directory` (relative path -> bytes).
private func snapshot(_ directory: String) -> [String: Data] {
    var files: [String: Data] = [:]
    let fm = FileManager.default
    guard let walker = fm.enumerator(atPath: directory) else { return files }
    while let relative = walker.nextObject() as? String {
        let path = (directory as NSString).appendingPathComponent(relative)
        var isDirectory: ObjCBool = false
        if fm.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
            files[relative] = fm.contents(atPath: path) ?? Data()
        }
    }
    return files
}

private func expectRefused(_ exit: ChildExit, _ label: String, mentioning needles: [String]) {
    #expect(!exit.signaled && exit.status == 2, "\(label): expected exit 2: \(exit)")
    for needle in needles {
        #expect(exit.stderr.contains(needle), "\(label): stderr should mention '\(needle)': \(exit)")
    }
    print("[sink safety] \(label): \(exit.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
}

extension SluiceEndToEndTests {
    @Test("A file sink refuses a non-empty directory that is not a Sluice output, and deletes nothing in it")
    func fileSinkRefusesForeignDirectory() async throws {
        let scratch = try ScratchDir("foreign-out")
        defer { scratch.remove() }
        let input = scratch.at("in")
        try SmallInput.write(to: input)
        let out = scratch.at("out")
        for (dir, name, text) in [("part-00000", "budget-2024.csv", "item,eur\nrent,1200\n"), ("part-00001", "report-7.csv", "a,b\n1,2\n")] {
            let d = (out as NSString).appendingPathComponent(dir)
            try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
            try text.write(toFile: (d as NSString).appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        let before = snapshot(out)

        let run = try await sluice(["run", "--input", "file:\(input)", "--output", "file:\(out)", "--quiet"], scratch: scratch, label: "run-foreign")
        expectRefused(run, "foreign directory", mentioning: [out, "_sluice_output"])
        #expect(snapshot(out) == before, "the refused run changed the directory: \(snapshot(out).keys.sorted())")

        let other = scratch.at("other")
        try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
        try "keep me\n".write(toFile: (other as NSString).appendingPathComponent("notes.txt"), atomically: true, encoding: .utf8)
        let withState = try await sluice(["run", "--input", "file:\(input)", "--output", "file:\(other)", "--state", scratch.at("s.db"), "--quiet"],
                                         scratch: scratch, label: "run-notes")
        expectRefused(withState, "directory with a stray file", mentioning: [other, "notes.txt"])
        #expect(snapshot(other).keys.sorted() == ["notes.txt"])
    }

    @Test("A file: output directory belongs to one job and one checkpoint store; its owner resumes it")
    func fileSinkDirectoryHasOneOwner() async throws {
        let scratch = try ScratchDir("owned-out")
        defer { scratch.remove() }
        let input = scratch.at("in")
        try SmallInput.write(to: input)
        let out = scratch.at("out")

        let first = try await sluice(["run", "--input", "file:\(input)", "--output", "file:\(out)", "--state", scratch.at("a.db"), "--quiet"],
                                     scratch: scratch, label: "run-a")
        try #require(first.exitedWith0, "\(first)")
        #expect(FileManager.default.fileExists(atPath: (out as NSString).appendingPathComponent("_sluice_output")))
        let written = snapshot(out)

        let otherStore = try await sluice(["run", "--input", "file:\(input)", "--output", "file:\(out)", "--state", scratch.at("b.db"), "--quiet"],
                                          scratch: scratch, label: "run-b")
        expectRefused(otherStore, "same job, another store", mentioning: [out, "checkpoint store", "--state"])
        #expect(snapshot(out) == written, "a refused run changed the first job's output")

        let otherJob = try await sluice(["run", "--job", E2E.job("bids-sliding"), "--input", "file:\(input)", "--output", "file:\(out)",
                                         "--state", scratch.at("c.db"), "--quiet"], scratch: scratch, label: "run-c")
        expectRefused(otherJob, "another job", mentioning: [out, "bids-sliding", "bids-tumbling"])
        #expect(snapshot(out) == written, "a refused run changed the first job's output")

        let again = try await sluice(["run", "--input", "file:\(input)", "--output", "file:\(out)", "--state", scratch.at("a.db"), "--quiet"],
                                     scratch: scratch, label: "run-a-again")
        #expect(again.exitedWith0, "the owner should resume its directory: \(again)")
        let verify = try await sluice(["verify", "--input", "file:\(input)", "--output", "file:\(out)"], scratch: scratch, label: "verify")
        #expect(verify.exitedWith0, "\(verify)")

        // The default --state lives in the directory itself; a rerun resumes it.
        let own = scratch.at("own")
        for label in ["run-default", "run-default-again"] {
            let run = try await sluice(["run", "--input", "file:\(input)", "--output", "file:\(own)", "--quiet"], scratch: scratch, label: label)
            #expect(run.exitedWith0, "\(label): \(run)")
        }
    }

    @Test("A sqlite sink with another --state is refused; so are the other cross-database combinations")
    func sinkAndStoreInDifferentDatabasesAreRefused() async throws {
        let scratch = try ScratchDir("sink-state")
        defer { scratch.remove() }
        let input = scratch.at("in")
        try SmallInput.write(to: input)
        let out = scratch.at("out.db"), state = scratch.at("state.db")

        let sqlite = try await sluice(["run", "--input", "file:\(input)", "--output", "sqlite:\(out)", "--state", state, "--quiet"],
                                      scratch: scratch, label: "sqlite-sink-other-state")
        expectRefused(sqlite, "sqlite sink, other --state", mentioning: ["--state", out, state])
        #expect(!FileManager.default.fileExists(atPath: out) && !FileManager.default.fileExists(atPath: state),
                "a refused run should create neither database")

        let pgStore = "postgres://sluice@127.0.0.1:1/nowhere"
        let sqliteWithPg = try await sluice(["run", "--input", "file:\(input)", "--output", "sqlite:\(out)", "--state", pgStore, "--quiet"],
                                            scratch: scratch, label: "sqlite-sink-pg-state")
        expectRefused(sqliteWithPg, "sqlite sink, postgres --state", mentioning: ["--state", out])

        let pgWithSqlite = try await sluice(["run", "--input", "file:\(input)", "--output", "postgres://sluice@127.0.0.1:1/nowhere", "--state", state, "--quiet"],
                                            scratch: scratch, label: "pg-sink-sqlite-state")
        expectRefused(pgWithSqlite, "postgres sink, sqlite --state", mentioning: ["--state", state])
        #expect(!FileManager.default.fileExists(atPath: state), "a refused run should not create the SQLite store")

        // The same file named twice is one database: accepted, and the results are where named.
        let same = try await sluice(["run", "--input", "file:\(input)", "--output", "sqlite:\(out)", "--state", out, "--quiet"],
                                    scratch: scratch, label: "sqlite-sink-same-state")
        #expect(same.exitedWith0, "\(same)")
        let verify = try await sluice(["verify", "--input", "file:\(input)", "--output", "sqlite:\(out)"], scratch: scratch, label: "verify")
        #expect(verify.exitedWith0, "\(verify)")
    }

    @Test("An input file that grows during a run fails it (exit 2, naming the file); no torn line commits")
    func growingInputFileFailsTheRun() async throws {
        let scratch = try ScratchDir("growing-input")
        defer { scratch.remove() }
        let input = scratch.at("in")
        try FileManager.default.createDirectory(atPath: input, withIntermediateDirectories: true)
        let file = (input as NSString).appendingPathComponent("part-00000.csv")
        // 3,000 events at 300 per second: about ten seconds of run to append into.
        let lines = (0..<3_000).map { "\($0 % 50),1,\($0 % 90 + 1),\(1_767_225_600_000 + Int64($0) * 10)\n" }
        try lines.joined().write(toFile: file, atomically: true, encoding: .utf8)
        let out = scratch.at("out")
        let arguments = ["run", "--input", "file:\(input)", "--output", "file:\(out)", "--rate", "300", "--checkpoint-interval-ms", "200", "--quiet"]
        let child = try Child(arguments, scratch: scratch, label: "run-growing")
        // Append once the run has committed something (it is then reading the file).
        let deadline = ContinuousClock.now + .seconds(60)
        let part = (out as NSString).appendingPathComponent("part-00000")
        while ContinuousClock.now < deadline, child.isRunning,
              ((try? FileManager.default.contentsOfDirectory(atPath: part)) ?? []).filter({ $0.hasPrefix("results-") }).isEmpty {
            try await Task.sleep(for: .milliseconds(50))
        }
        try #require(child.isRunning, "the run ended before the append could happen")
        let handle = try #require(FileHandle(forWritingAtPath: file))
        handle.seekToEndOfFile()
        handle.write(Data("2,7,5,17000006".utf8))  // half a line: its end comes later
        try handle.close()

        let exit = await child.wait()
        expectRefused(exit, "growing input", mentioning: [file, "changed"])
        let sink = try fileSinkLines(directory: out)
        let torn = (sink.results + sink.late + sink.dead).filter { $0.contains("17000006") }
        #expect(torn.isEmpty, "a torn line reached the sink: \(torn)")

        // The writer finishes its line; the run resumes from its checkpoint and matches the oracle.
        let finish = try #require(FileHandle(forWritingAtPath: file))
        finish.seekToEndOfFile()
        finish.write(Data("00000\n".utf8))
        try finish.close()
        let resumed = try await sluice(["run", "--input", "file:\(input)", "--output", "file:\(out)", "--quiet"], scratch: scratch, label: "run-resumed")
        #expect(resumed.exitedWith0, "\(resumed)")
        let verify = try await sluice(["verify", "--input", "file:\(input)", "--output", "file:\(out)"], scratch: scratch, label: "verify")
        #expect(verify.exitedWith0, "\(verify)")
    }

    @Test("verify compares late events and dead letters by their lines as well as their positions")
    func verifyComparesRejectedLinesByContent() async throws {
        let scratch = try ScratchDir("verify-content")
        defer { scratch.remove() }
        let input = scratch.at("in")
        try SmallInput.write(to: input)
        let out = scratch.at("out")
        let run = try await sluice(["run", "--input", "file:\(input)", "--output", "file:\(out)", "--quiet"], scratch: scratch, label: "run")
        try #require(run.exitedWith0, "\(run)")
        let verify = ["verify", "--input", "file:\(input)", "--output", "file:\(out)"]
        let clean = try await sluice(verify, scratch: scratch, label: "verify-clean")
        try #require(clean.exitedWith0, "\(clean)")

        let part = (out as NSString).appendingPathComponent("part-00000")
        let names = try FileManager.default.contentsOfDirectory(atPath: part)
        for (prefix, original, altered) in [("dead-", "garbage one", "garbage 1"), ("late-", "2,1,700,1767225605000", "2,1,700,1767225")] {
            let name = try #require(names.first { $0.hasPrefix(prefix) }, "no \(prefix) file in \(names)")
            let path = (part as NSString).appendingPathComponent(name)
            let text = try String(contentsOfFile: path, encoding: .utf8)
            try #require(text.contains(original), "\(name): \(text)")
            try text.replacingOccurrences(of: original, with: altered).write(toFile: path, atomically: true, encoding: .utf8)
            let tampered = try await sluice(verify, scratch: scratch, label: "verify-\(prefix)")
            #expect(!tampered.signaled && tampered.status == 1, "\(prefix): a changed line at the right offset must fail verify: \(tampered)")
            #expect(tampered.stdout.contains(altered), "\(prefix): the report should show the sink's line: \(tampered)")
            try text.write(toFile: path, atomically: true, encoding: .utf8)
        }
    }

    @Test("A file sink in a read-only directory is a clear error naming the directory (exit 2)")
    func readOnlyOutputDirectory() async throws {
        let scratch = try ScratchDir("read-only-out")
        defer {
            chmod(scratch.at("ro"), 0o755)
            scratch.remove()
        }
        let input = scratch.at("in")
        try SmallInput.write(to: input)
        let readOnly = scratch.at("ro")
        try FileManager.default.createDirectory(atPath: readOnly, withIntermediateDirectories: true)
        try #require(chmod(readOnly, 0o555) == 0)
        let inside = (readOnly as NSString).appendingPathComponent("out")
        for (output, needle) in [(readOnly, "not writable"), (inside, "cannot create")] {
            let exit = try await sluiceUnprivileged(["run", "--input", "file:\(input)", "--output", "file:\(output)", "--quiet"], scratch: scratch)
            expectRefused(exit, "read-only \(output)", mentioning: [output, needle])
            #expect(!exit.stderr.contains("NSCocoaErrorDomain") && !exit.stderr.contains("UserInfo"), "a raw Foundation error: \(exit)")
        }
    }

    @Test("CRLF line ends: the engine and the oracle both take the lines, with no dead letter")
    func crlfInputIsAccepted() async throws {
        let scratch = try ScratchDir("crlf")
        defer { scratch.remove() }
        let input = scratch.at("in")
        try SmallInput.write(to: input, lineEnd: "\r\n")
        let out = scratch.at("out")
        let run = try await sluice(["run", "--input", "file:\(input)", "--output", "file:\(out)", "--quiet"], scratch: scratch, label: "run")
        try #require(run.exitedWith0, "\(run)")
        let sink = try fileSinkLines(directory: out)
        #expect(sink.dead.count == 1 && sink.dead.allSatisfy { $0.hasPrefix("0,1,") && $0.hasSuffix(",\"garbage one\"") },
                "only the garbage line is a dead letter: \(sink.dead)")
        #expect(sink.late.count == 1 && sink.late.allSatisfy { $0.hasPrefix("0,4,") && $0.hasSuffix(",\"2,1,700,1767225605000\"") },
                "one late event, its line without the \\r: \(sink.late)")
        #expect(sink.results.sorted() == ["1767225600000,1,2,700,400", "1767225600000,2,2,350,250",
                                          "1767225610000,3,1,50,50", "1767225630000,4,2,520,500"], "results: \(sink.results)")
        let oracle = scratch.at("oracle")
        let computed = try await sluice(["oracle", "--input", "file:\(input)", "--out", oracle], scratch: scratch, label: "oracle")
        try #require(computed.exitedWith0, "\(computed)")
        let deadLetters = try String(contentsOfFile: (oracle as NSString).appendingPathComponent("dead_letters.csv"), encoding: .utf8)
        let oracleDead = deadLetters.split(separator: "\n").dropFirst()
        #expect(oracleDead.count == 1 && oracleDead.allSatisfy { $0.hasPrefix("0,1,") }, "the oracle's dead letters: \(deadLetters)")
        let verify = try await sluice(["verify", "--input", "file:\(input)", "--output", "file:\(out)"], scratch: scratch, label: "verify")
        #expect(verify.exitedWith0, "\(verify)")
    }
}

/// Runs `sluice` as an unprivileged user when this test runs as root (root writes anywhere, so a
/// read-only directory would not be one), else as this user; bounded by the default timeout.
private func sluiceUnprivileged(_ arguments: [String], scratch: ScratchDir) async throws -> ChildExit {
    let binary = try E2E.binary()
    let process = Process()
    if geteuid() == 0 {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        process.arguments = ["--reuid=65534", "--regid=65534", "--clear-groups", "--", binary] + arguments
    } else {
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
    }
    process.currentDirectoryURL = URL(fileURLWithPath: "/")
    let out = scratch.at("unprivileged.out"), err = scratch.at("unprivileged.err")
    _ = FileManager.default.createFile(atPath: out, contents: nil)
    _ = FileManager.default.createFile(atPath: err, contents: nil)
    process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
    process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: err))
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let deadline = ContinuousClock.now + E2E.defaultTimeout
    var timedOut = false
    while process.isRunning {
        if ContinuousClock.now >= deadline {
            timedOut = true
            process.terminate()
            break
        }
        try await Task.sleep(for: .milliseconds(20))
    }
    process.waitUntilExit()
    return ChildExit(status: process.terminationStatus, signaled: process.terminationReason == .uncaughtSignal, timedOut: timedOut,
                     stdout: Child.read(out), stderr: Child.read(err))
}
