// Bad input and bad configuration, end to end: malformed lines become dead letters at the right
// offsets without stopping the run; bad job specs and arguments exit 2 with a message naming the problem.

import Foundation
import SluiceStorage
import Testing

/// A hand-written input of two partitions (keys even in partition 0, odd in partition 1).
private enum HandWrittenInput {
    static let longLine = "4,1," + String(repeating: "9", count: 200_000) + ",1767225600400"  // ~200 KB, price overflows

    /// Partition 0. The comment on each line is its offset and what it is.
    static let partition0: [[UInt8]] = [
        Array("2,1,100,1767225600000".utf8),                          // 0 valid: window 1767225600000, key 2
        [0x00, 0xFF, 0xFE, 0x01, 0x7F, 0x80, 0xC3, 0x28, 0x2C, 0x0D, 0x09],  // 1 binary garbage
        [],                                                            // 2 empty line
        Array("1,2,3".utf8),                                           // 3 three fields
        Array("2,1,123456789012345678901234567890,1767225600100".utf8),  // 4 a 30-digit price
        Array("2,1,100,1767225600200\r".utf8),                         // 5 valid: a \r\n line end (CRLF is accepted)
        Array("2,1,-5,1767225600300".utf8),                            // 6 negative price
        Array(longLine.utf8),                                          // 7 a 200 KB line
        Array("2,1,250,1767225601000".utf8),                           // 8 valid: window 1767225600000, key 2
        Array("4,3,500,1767225630000".utf8),                           // 9 valid: W = 1767225628000, window ...600000 fires
        Array("2,1,700,1767225605000".utf8),                           // 10 late: its window ended at ...610000 <= W
        Array("0,5,1,1767225631000".utf8),                             // 11 valid: key 0, price 1 (the minimum)
        Array("6,1,0,1767225631000".utf8),                             // 12 price 0, below the minimum
        Array("18446744073709551614,1,10,1767225632000".utf8),         // 13 valid: a key near UInt64.max
        Array("18446744073709551616,1,10,1767225632000".utf8),         // 14 key UInt64.max + 1
        Array("2,1,10,1767225632000,".utf8),                           // 15 a trailing comma: 5 fields
        Array("2 ,1,10,1767225632000".utf8),                           // 16 a space
        Array("+2,1,10,1767225632000".utf8),                           // 17 a plus sign
        Array("8,1,10,-1".utf8),                                       // 18 valid but late: window [-10000, 0)
    ]

    /// Partition 1; the last line has no `\n`.
    static let partition1: [String] = [
        "1,7,300,1767225600000",   // 0 valid
        "1,7,400,1767225609999",   // 1 valid, same window
        "3,7,50,1767225610000",    // 2 valid: W = 1767225608000
        "garbage line 3",          // 3 garbage
        "1,7,5,1767225600001",     // 4 out of order but not late: its window ends at ...610000 > W
        "3,7,60,1767225611000",    // 5 valid, no line end
    ]

    static let expectedDeadLetters = [1, 2, 3, 4, 6, 7, 12, 14, 15, 16, 17].map { "0,\($0)" } + ["1,3"]
    static let expectedLate = ["0,10", "0,18"]
    static let expectedRows = [
        "1767225600000,2,3,450,250",
        "1767225630000,4,1,500,500",
        "1767225630000,0,1,1,1",
        "1767225630000,18446744073709551614,1,10,10",
        "1767225600000,1,3,705,400",
        "1767225610000,3,2,110,60",
    ].sorted()

    static func write(to directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var p0: [UInt8] = []
        for line in partition0 { p0 += line + [10] }
        try Data(p0).write(to: URL(fileURLWithPath: (directory as NSString).appendingPathComponent("part-00000.csv")))
        let p1 = partition1.joined(separator: "\n")
        try Data(p1.utf8).write(to: URL(fileURLWithPath: (directory as NSString).appendingPathComponent("part-00001.csv")))
    }
}

extension SluiceEndToEndTests {
    @Test("Malformed lines become dead letters at their offsets; the run and verify succeed", arguments: SinkKind.allCases)
    func malformedLinesAreDeadLetters(sink: SinkKind) async throws {
        let scratch = try ScratchDir("bad-input-\(sink)")
        defer { scratch.remove() }
        let input = scratch.at("in")
        try HandWrittenInput.write(to: input)
        let output = sink.uri(scratch)

        let run = try await sluice(["run", "--input", "file:\(input)", "--output", output, "--quiet"], scratch: scratch, label: "run")
        try #require(run.exitedWith0, "sluice run on bad lines: \(run)")
        let verify = try await sluice(["verify", "--input", "file:\(input)", "--output", output], scratch: scratch, label: "verify")
        #expect(verify.exitedWith0, "sluice verify on bad lines: \(verify)")

        var rows: [String] = [], late: [String] = [], dead: [String] = []
        switch sink {
        case .sqlite:
            let db = try SQLiteDatabase(path: scratch.at("out.db"))
            let select = try db.prepare("SELECT window_start_ms, auction, count, sum_price, max_price FROM results")
            while try select.step() {
                rows.append("\(select.int64(0)),\(UInt64(bitPattern: select.int64(1))),\(select.int64(2)),\(select.int64(3)),\(select.int64(4))")
            }
            let lateRows = try db.prepare("SELECT partition, offset FROM results_late")
            while try lateRows.step() { late.append("\(lateRows.int64(0)),\(lateRows.int64(1))") }
            let deadRows = try db.prepare("SELECT partition, offset, line FROM results_dead_letters")
            var lineAt: [String: String] = [:]
            while try deadRows.step() {
                let key = "\(deadRows.int64(0)),\(deadRows.int64(1))"
                dead.append(key)
                lineAt[key] = deadRows.string(2)
            }
            // The dead letter keeps the line's text.
            #expect(lineAt["0,3"] == "1,2,3")
            #expect(lineAt["0,7"] == HandWrittenInput.longLine)
            #expect(lineAt["1,3"] == "garbage line 3")
        case .file:
            let lines = try fileSinkLines(directory: scratch.at("out"))
            rows = lines.results.map(String.init)
            func partitionOffset(_ line: Substring) -> String { line.split(separator: ",", maxSplits: 2).prefix(2).joined(separator: ",") }
            late = lines.late.map(partitionOffset)
            dead = lines.dead.map(partitionOffset)
            #expect(lines.staged.isEmpty, "files left in .staging: \(lines.staged)")
        }
        #expect(dead.sorted(by: offsetOrder) == HandWrittenInput.expectedDeadLetters, "dead letters (partition,offset)")
        #expect(late.sorted(by: offsetOrder) == HandWrittenInput.expectedLate, "late events (partition,offset)")
        #expect(rows.sorted() == HandWrittenInput.expectedRows, "result rows")
    }

    @Test("Bad job specs and arguments exit 2 and name the problem")
    func badConfigurationIsRefused() async throws {
        let scratch = try ScratchDir("bad-config")
        defer { scratch.remove() }
        let input = scratch.at("in")
        try HandWrittenInput.write(to: input)

        func refused(_ arguments: [String], mentioning needles: [String], _ label: String) async throws {
            let exit = try await sluice(arguments, scratch: scratch, label: label)
            #expect(!exit.signaled && exit.status == 2, "\(label): expected exit 2: \(exit)")
            #expect(exit.stderr.contains("error:"), "\(label): stderr should start with error: \(exit)")
            for needle in needles {
                #expect(exit.stderr.contains(needle), "\(label): stderr should mention '\(needle)': \(exit)")
            }
            print("[bad config] \(label): \(exit.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
        }

        let negativeSize = scratch.at("negative-size.yaml")
        try """
            name: negative-size
            window: {kind: tumbling, size_ms: -5}
            aggregates: [count]
            """.write(toFile: negativeSize, atomically: true, encoding: .utf8)
        try await refused(["run", "--job", negativeSize, "--input", "file:\(input)", "--output", "sqlite:" + scratch.at("a.db")],
                          mentioning: ["window.size_ms", "-5"], "negative window size")
        try await refused(["verify", "--job", negativeSize, "--input", "file:\(input)", "--output", "sqlite:" + scratch.at("a.db")],
                          mentioning: ["window.size_ms"], "negative window size (verify)")

        let unknownAggregate = scratch.at("unknown-aggregate.yaml")
        try """
            name: unknown-aggregate
            window: {kind: tumbling, size_ms: 10000}
            aggregates:
              - count
              - median: price
            """.write(toFile: unknownAggregate, atomically: true, encoding: .utf8)
        try await refused(["run", "--job", unknownAggregate, "--input", "file:\(input)", "--output", "sqlite:" + scratch.at("b.db")],
                          mentioning: ["aggregates[1]", "median"], "unknown aggregate")

        let missing = scratch.at("no-such-input")
        try await refused(["run", "--input", "file:\(missing)", "--output", "sqlite:" + scratch.at("c.db")],
                          mentioning: [missing, "input"], "missing input directory")
        #expect(!FileManager.default.fileExists(atPath: scratch.at("c.db")), "a refused run should not create its sink")

        try await refused(["run", "--job", scratch.at("no-such-job.yaml"), "--input", "file:\(input)", "--output", "sqlite:" + scratch.at("d.db")],
                          mentioning: ["no-such-job.yaml"], "missing job file")
        try await refused(["run", "--input", "file:\(input)", "--output", "sqlite:" + scratch.at("e.db"), "--checkpoint-interval-ms", "0"],
                          mentioning: ["--checkpoint-interval-ms"], "zero checkpoint interval")
        try await refused(["run", "--input", "file:\(input)", "--output", "sqlite:" + scratch.at("e.db"), "--rate", "0"],
                          mentioning: ["--rate", "positive"], "zero rate")
        try await refused(["run", "--input", "file:\(input)", "--output", "bogus:" + scratch.at("f")],
                          mentioning: ["unknown sink"], "unknown sink")

        let gappy = scratch.at("gappy")
        try FileManager.default.createDirectory(atPath: gappy, withIntermediateDirectories: true)
        try "2,1,100,1767225600000\n".write(toFile: (gappy as NSString).appendingPathComponent("part-00000.csv"), atomically: true, encoding: .utf8)
        try "3,1,100,1767225600000\n".write(toFile: (gappy as NSString).appendingPathComponent("part-00002.csv"), atomically: true, encoding: .utf8)
        try await refused(["run", "--input", "file:\(gappy)", "--output", "sqlite:" + scratch.at("g.db")],
                          mentioning: ["part-00001.csv"], "partition files with a gap")

        // A state written by one job is refused to another.
        let ok = try await sluice(["run", "--input", "file:\(input)", "--output", "sqlite:" + scratch.at("h.db"), "--quiet"],
                                  scratch: scratch, label: "run-default-job")
        try #require(ok.exitedWith0, "\(ok)")
        try await refused(["run", "--job", E2E.job("bids-sliding"), "--input", "file:\(input)", "--output", "sqlite:" + scratch.at("h.db")],
                          mentioning: ["holds the state of another run", "job: stored"], "state of another job")
    }

    @Test("Event times beyond ±2^62 ms are dead letters, in the engine and in the oracle")
    func extremeEventTimes() async throws {
        let scratch = try ScratchDir("extreme-times")
        defer { scratch.remove() }
        let input = scratch.at("in")
        try FileManager.default.createDirectory(atPath: input, withIntermediateDirectories: true)
        try """
            2,1,10,1767225600000
            2,1,10,4611686018427387905
            2,1,10,9223372036854775807
            2,1,10,-4611686018427387905
            2,1,10,4611686018427387904
            2,1,10,-4611686018427387904

            """.write(toFile: (input as NSString).appendingPathComponent("part-00000.csv"), atomically: true, encoding: .utf8)
        let output = "sqlite:" + scratch.at("out.db")
        let run = try await sluice(["run", "--input", "file:\(input)", "--output", output, "--quiet"], scratch: scratch, label: "run")
        try #require(run.exitedWith0, "\(run)")
        let verify = try await sluice(["verify", "--input", "file:\(input)", "--output", output], scratch: scratch, label: "verify")
        #expect(verify.exitedWith0, "\(verify)")

        let db = try SQLiteDatabase(path: scratch.at("out.db"))
        func offsets(_ table: String) throws -> [Int64] {
            let stmt = try db.prepare("SELECT offset FROM \(table) ORDER BY offset")
            var result: [Int64] = []
            while try stmt.step() { result.append(stmt.int64(0)) }
            return result
        }
        #expect(try offsets("results_dead_letters") == [1, 2, 3], "times beyond ±2^62 ms are malformed")
        #expect(try offsets("results_late") == [5], "-2^62 ms is a valid time, late here")
        let rows = try db.prepare("SELECT window_start_ms FROM results ORDER BY window_start_ms")
        var starts: [Int64] = []
        while try rows.step() { starts.append(rows.int64(0)) }
        #expect(starts == [1_767_225_600_000, 4_611_686_018_427_380_000], "+2^62 ms is a valid time")
    }
}

/// Orders "partition,offset" texts numerically.
private func offsetOrder(_ a: String, _ b: String) -> Bool {
    let x = a.split(separator: ",").compactMap { Int($0) }, y = b.split(separator: ",").compactMap { Int($0) }
    return x.lexicographicallyPrecedes(y)
}
