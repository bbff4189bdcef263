// The CDC stream decoder: whole transactions only, dedupe below the position, partitioning by key,
// the change-line and insert-CSV forms, keepalives; and the ChangeLogProcessor reading its lines.

import SluiceConnectors
import SluiceCore
import Testing

private func frame(_ message: Bytes, at lsn: Int64) -> [UInt8] {
    Bytes("w").int64(lsn).int64(lsn).int64(0).raw(message.bytes).bytes
}

private let relation = Bytes("R").int32(9).string("public").string("accounts").char("f").int16(3)
    .byte(1).string("id").int32(20).int32(UInt32(bitPattern: -1))
    .byte(0).string("name").int32(25).int32(UInt32(bitPattern: -1))
    .byte(0).string("doc").int32(25).int32(UInt32(bitPattern: -1))

/// One transaction: begin (commit LSN `lsn`), the messages, commit (end `lsn + 8`); time 2 s after 2000-01-01.
private func transaction(_ lsn: Int64, _ messages: [Bytes]) -> [[UInt8]] {
    [frame(Bytes("B").int64(lsn).int64(2_000_000).int32(1), at: lsn - 50)]
        + messages.enumerated().map { frame($1, at: lsn - 40 + Int64($0)) }
        + [frame(Bytes("C").byte(0).int64(lsn).int64(lsn + 8).int64(2_000_000), at: lsn)]
}

private func feed(_ decoder: CdcStreamDecoder, _ frames: [[UInt8]]) throws {
    for f in frames { try f.withUnsafeBytes { try decoder.handle(frame: $0) } }
}

private func lines(_ decoder: CdcStreamDecoder) -> [String] {
    var text = ""
    decoder.take { text += String(decoding: $0, as: UTF8.self) }
    return text.split(separator: "\n").map(String.init)
}

/// 2000-01-01T00:00:02Z in Unix milliseconds.
private let commitMs = "946684802000"

@Suite("CDC stream decoder") struct CdcStreamDecoderTests {
    @Test func changeLinesWithJSONBeforeAndAfter() throws {
        let d = CdcStreamDecoder(table: "accounts", keyColumn: "id", partitions: 1, partition: 0, mode: .changes, position: 0)
        try feed(d, [frame(relation, at: 10)] + transaction(1_000, [
            Bytes("I").int32(9).char("N").tuple(["1", "a\tb", nil]),
            Bytes("U").int32(9).char("O").tuple(["1", "a\tb", "long"]).char("N").tuple(["1", "c\"", "\u{0}TOAST"]),
            Bytes("D").int32(9).char("O").tuple(["1", "c\"", "long"]),
        ]))
        #expect(lines(d) == [
            "1000\t0\t\(commitMs)\tpublic.accounts\tinsert\t\t{\"id\":\"1\",\"name\":\"a\\tb\",\"doc\":null}",
            // The unchanged TOAST value is taken from the old row.
            "1000\t1\t\(commitMs)\tpublic.accounts\tupdate\t{\"id\":\"1\",\"name\":\"a\\tb\",\"doc\":\"long\"}\t{\"id\":\"1\",\"name\":\"c\\\"\",\"doc\":\"long\"}",
            "1000\t2\t\(commitMs)\tpublic.accounts\tdelete\t{\"id\":\"1\",\"name\":\"c\\\"\",\"doc\":\"long\"}\t",
        ])
        #expect(d.position == 1_008)
    }

    @Test func anOpenTransactionIsNotHandedOut() throws {
        let d = CdcStreamDecoder(table: "accounts", keyColumn: "id", partitions: 1, partition: 0, mode: .changes, position: 0)
        let t = transaction(2_000, [Bytes("I").int32(9).char("N").tuple(["1", "x", nil])])
        try feed(d, [frame(relation, at: 10)] + t.dropLast())
        #expect(lines(d).isEmpty && d.position == 0 && d.inTransaction)
        // A keepalive inside a transaction must not move the position past it.
        try feed(d, [Bytes("k").int64(5_000).int64(0).byte(0).bytes])
        #expect(d.position == 0)
        d.discardOpenTransaction()  // the connection broke: the server sends it again
        try feed(d, t)
        #expect(lines(d).count == 1 && d.position == 2_008)
        // Between transactions a keepalive moves the position (an idle table still confirms).
        try feed(d, [Bytes("k").int64(5_000).int64(0).byte(1).bytes])
        #expect(d.position == 5_000 && d.replyRequested)
    }

    @Test func transactionsBelowThePositionAreDropped() throws {
        // Reopened at 2_008 (the end of the transaction committed at 2_000): a replay of it is skipped.
        let d = CdcStreamDecoder(table: "accounts", keyColumn: "id", partitions: 1, partition: 0, mode: .changes, position: 2_008)
        try feed(d, [frame(relation, at: 10)]
                 + transaction(2_000, [Bytes("I").int32(9).char("N").tuple(["1", "old", nil])])
                 + transaction(3_000, [Bytes("I").int32(9).char("N").tuple(["2", "new", nil])]))
        let out = lines(d)
        #expect(out.count == 1 && out[0].hasPrefix("3000\t0\t"))
        #expect(d.skippedTransactions == 1 && d.position == 3_008)
    }

    @Test func partitionsKeepTheirKeysAndNumberChangesAlike() throws {
        let txn = transaction(4_000, (0..<6).map { Bytes("I").int32(9).char("N").tuple(["\($0)", "v", nil]) }
                              + [Bytes("D").int32(9).char("O").tuple(["-3", "v", nil])])
        var seen: [String] = []
        for p in 0..<3 {
            let d = CdcStreamDecoder(table: "accounts", keyColumn: "id", partitions: 3, partition: p, mode: .changes, position: 0)
            try feed(d, [frame(relation, at: 10)] + txn)
            let out = lines(d)
            for line in out {
                let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
                let row = fields[4] == "delete" ? fields[5] : fields[6]
                let id = Int(row.split(separator: "\"")[3]) ?? -99
                #expect(((id % 3) + 3) % 3 == p, "\(line) in partition \(p)")
                seen.append(String(fields[1]))
            }
            #expect(d.position == 4_008, "every partition moves past the transaction")
        }
        // The index is the change's place in the whole transaction: unique across partitions.
        #expect(seen.sorted() == (0..<7).map(String.init))
    }

    @Test func insertsModeWritesTheSchemaFieldsAsCSV() throws {
        let bids = Bytes("R").int32(3).string("public").string("bids").char("f").int16(4)
            .byte(0).string("id").int32(20).int32(0).byte(0).string("price").int32(20).int32(0)
            .byte(0).string("auction").int32(20).int32(0).byte(0).string("event_time_ms").int32(20).int32(0)
        let d = CdcStreamDecoder(table: "bids", keyColumn: "auction", partitions: 2, partition: 1,
                                 mode: .inserts(fields: ["auction", "bidder", "price", "event_time_ms"]), position: 0)
        try feed(d, [frame(bids, at: 10)] + transaction(6_000, [
            Bytes("I").int32(3).char("N").tuple(["1", "70", "5", "1000"]),
            Bytes("I").int32(3).char("N").tuple(["2", "80", "4", "1001"]),  // auction 4: partition 0
            Bytes("U").int32(3).char("N").tuple(["1", "71", "5", "1000"]),  // updates are not inserts
        ]))
        // No `bidder` column in the table: the field stays empty (a dead letter downstream).
        #expect(lines(d) == ["5,,70,1000"])
    }

    @Test func insertsAreRowImagesWithStringsQuotedAndNullsEmpty() throws {
        let notes = Bytes("R").int32(4).string("public").string("notes").char("f").int16(3)
            .byte(0).string("id").int32(20).int32(0).byte(0).string("note").int32(25).int32(0)
            .byte(0).string("tag").int32(25).int32(0)
        let d = CdcStreamDecoder(table: "notes", keyColumn: "id", partitions: 1, partition: 0,
                                 mode: .inserts(fields: ["id", "note", "tag"]), position: 0)
        try feed(d, [frame(notes, at: 10)] + transaction(6_000, [
            Bytes("I").int32(4).char("N").tuple(["1", "a,b \"q\"\nc", nil]),
            Bytes("I").int32(4).char("N").tuple(["2", "", "plain"]),
        ]))
        var text = ""
        d.take { text += String(decoding: $0, as: UTF8.self) }
        // RFC 4180: quoted when it must be, quotes doubled; NULL an empty field, "" the empty string.
        #expect(text == "1,\"a,b \"\"q\"\"\nc\",\n2,\"\",plain\n")
    }

    @Test func keysThatAreNotIntegersAreHashed() {
        #expect(CdcStreamDecoder.partition(ofKey: Array("17".utf8), partitions: 4) == 1)
        #expect(CdcStreamDecoder.partition(ofKey: Array("-17".utf8), partitions: 4) == 3)
        // Anything else by murmur2 of its UTF-8 text, as Kafka's default partitioner and the
        // engine's partition check place it.
        let abc = KeyPartitioner(.murmur2, partitions: 4).murmur2Partition(Array("abc".utf8))
        #expect(CdcStreamDecoder.partition(ofKey: Array("abc".utf8), partitions: 4) == abc)
        // A string key of integer text goes by the job's partitioner, as the engine checks it.
        let seventeen = KeyPartitioner(.murmur2, partitions: 4).murmur2Partition(Array("17".utf8))
        #expect(CdcStreamDecoder.partition(ofKey: Array("17".utf8), partitions: 4, partitioner: .murmur2) == seventeen)
        #expect(CdcStreamDecoder.partition(ofKey: Array("-17".utf8), partitions: 4, partitioner: .modulo) == 3)
        // Text keys: murmur2 of the UTF-8 text, as the records engine's partition check computes.
        for key in ["abc", "cust-00042", "ü-42", "12.50"] {
            #expect(CdcStreamDecoder.partition(ofKey: Array(key.utf8), partitions: 7)
                    == KeyPartitioner(.murmur2, partitions: 7).partition(of: [.string(key)]))
        }
    }
}

@Suite("Change log processor") struct ChangeLogProcessorTests {
    @Test func linesBecomeRowsAndBadLinesDeadLetters() throws {
        let text = "10\t0\t5\tpublic.t\tinsert\t\t{\"id\":\"1\"}\nnot a change\n10\t1\t6\tpublic.t\tdelete\t{\"id\":\"1\"}\t\n"
        let p = ChangeLogProcessor(partition: 2)
        #expect(Array(text.utf8).withUnsafeBytes { p.process($0) } == 3)
        let out = p.takeOutput()
        #expect(out.changes == [
            ChangeRow(lsn: 10, index: 0, commitTimeMs: 5, table: "public.t", op: "insert", before: "", after: "{\"id\":\"1\"}"),
            ChangeRow(lsn: 10, index: 1, commitTimeMs: 6, table: "public.t", op: "delete", before: "{\"id\":\"1\"}", after: ""),
        ])
        #expect(out.deadLetters.map(\.offset) == [1])
        #expect(p.offset == 3 && p.eventsIn == 2 && p.watermark == 6)
        let restored = ChangeLogProcessor(partition: 2)
        try restored.restore(try p.snapshot())
        #expect(restored.offset == 3 && restored.eventsIn == 2 && restored.watermark == 6)
    }

    /// Fuzz findings: what the decoder writes (a commit before 1970 is a negative time) is read
    /// back; an integer past Int64 is a dead letter, not a trap.
    @Test func negativeTimesReadBackAndHugeNumbersAreDeadLetters() {
        let text = "10\t0\t-5\tpublic.t\tinsert\t\t{}\n9999999999999999999\t0\t5\tpublic.t\tinsert\t\t{}\n10\t0\t-9223372036854775808\tpublic.t\tdelete\t{}\t\n"
        let p = ChangeLogProcessor(partition: 0)
        #expect(Array(text.utf8).withUnsafeBytes { p.process($0) } == 3)
        let out = p.takeOutput()
        #expect(out.changes.map(\.commitTimeMs) == [-5, .min])
        #expect(out.deadLetters.map(\.offset) == [1])
    }

    /// A schema name may hold a tab (a quoted identifier): escaped in the line, it comes back whole.
    @Test func tableNamesWithTabsAndBackslashesRoundTrip() {
        let row = ChangeRow(lsn: 1, index: 0, commitTimeMs: 2, table: "pub\tlic.a\\b\nc", op: "insert", before: "", after: "{}")
        var line: [UInt8] = []
        ChangeLine.append(row, to: &line)
        #expect(line.filter { $0 == 9 }.count == 6 && line.last == 10)
        let parsed = line.dropLast().withUnsafeBytes { ChangeLine.parse($0) }
        #expect(parsed == .success(row))
    }
}
