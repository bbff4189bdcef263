// The pgoutput decoder on byte fixtures: the messages as PostgreSQL frames them (protocol version 1).

import SluiceConnectors
import Testing

/// Builds pgoutput bytes the way the server writes them: big-endian integers, NUL-terminated strings.
struct Bytes {
    var bytes: [UInt8] = []
    init(_ kind: Character) { bytes.append(UInt8(ascii: kind.unicodeScalars.first!)) }  // test literal
    func byte(_ b: UInt8) -> Bytes { var c = self; c.bytes.append(b); return c }
    func char(_ c: Character) -> Bytes { byte(UInt8(ascii: c.unicodeScalars.first!)) }
    func int16(_ v: Int16) -> Bytes { var c = self; withUnsafeBytes(of: v.bigEndian) { c.bytes += $0 }; return c }
    func int32(_ v: UInt32) -> Bytes { var c = self; withUnsafeBytes(of: v.bigEndian) { c.bytes += $0 }; return c }
    func int64(_ v: Int64) -> Bytes { var c = self; withUnsafeBytes(of: v.bigEndian) { c.bytes += $0 }; return c }
    func string(_ s: String) -> Bytes { var c = self; c.bytes += Array(s.utf8) + [0]; return c }
    func raw(_ r: [UInt8]) -> Bytes { var c = self; c.bytes += r; return c }
    /// TupleData: nil = NULL 'n', "\u{0}TOAST" = unchanged 'u', else text 't'.
    func tuple(_ values: [String?]) -> Bytes {
        var c = int16(Int16(values.count))
        for v in values {
            switch v {
            case nil: c = c.char("n")
            case "\u{0}TOAST": c = c.char("u")
            case let text?: c = c.char("t").int32(UInt32(text.utf8.count)).raw(Array(text.utf8))
            }
        }
        return c
    }
}

func decode(_ b: Bytes) throws -> PgOutputMessage {
    try b.bytes.withUnsafeBytes { try PgOutputDecoder.decode($0) }
}

func t(_ s: String) -> PgOutputValue { .text(Array(s.utf8)) }

@Suite("pgoutput decoder") struct PgOutputDecoderTests {
    @Test func beginAndCommit() throws {
        // A literal fixture: 'B', final LSN 0/16B3748, commit time 1 s after 2000-01-01, xid 735.
        let begin: [UInt8] = [0x42, 0, 0, 0, 0, 0x01, 0x6B, 0x37, 0x48, 0, 0, 0, 0, 0, 0x0F, 0x42, 0x40, 0, 0, 0x02, 0xDF]
        #expect(try begin.withUnsafeBytes { try PgOutputDecoder.decode($0) } == .begin(finalLSN: 0x16B3748, commitTimeMicros: 1_000_000, xid: 735))
        let commit = Bytes("C").byte(0).int64(0x16B3748).int64(0x16B3778).int64(1_000_000)
        #expect(try decode(commit) == .commit(commitLSN: 0x16B3748, endLSN: 0x16B3778, commitTimeMicros: 1_000_000))
    }

    @Test func relationWithSeveralColumnsAndKeyFlags() throws {
        let r = Bytes("R").int32(16_385).string("public").string("accounts").char("f").int16(3)
            .byte(1).string("id").int32(20).int32(UInt32(bitPattern: -1))
            .byte(0).string("name").int32(25).int32(UInt32(bitPattern: -1))
            .byte(0).string("balance").int32(1700).int32(1_310_724)
        let expected = PgOutputRelation(id: 16_385, namespace: "public", name: "accounts", replicaIdentity: UInt8(ascii: "f"), columns: [
            .init(name: "id", typeOid: 20, isKey: true), .init(name: "name", typeOid: 25, isKey: false),
            .init(name: "balance", typeOid: 1700, isKey: false),
        ])
        #expect(try decode(r) == .relation(expected))
        #expect(expected.qualifiedName == "public.accounts")
    }

    @Test func insertWithNullsAndSeveralColumns() throws {
        let m = Bytes("I").int32(16_385).char("N").tuple(["42", nil, "héllo, \"world\"\n", ""])
        #expect(try decode(m) == .insert(relation: 16_385, new: [t("42"), .null, t("héllo, \"world\"\n"), t("")]))
    }

    @Test func updateWithOldTupleAndUnchangedToast() throws {
        let m = Bytes("U").int32(7).char("O").tuple(["1", "old", "big"]).char("N").tuple(["1", "new", "\u{0}TOAST"])
        #expect(try decode(m) == .update(relation: 7, old: [t("1"), t("old"), t("big")], oldIsKeyOnly: false,
                                         new: [t("1"), t("new"), .unchangedToast]))
    }

    @Test func updateWithKeyTupleAndWithout() throws {
        let keyed = Bytes("U").int32(7).char("K").tuple(["1", nil, nil]).char("N").tuple(["2", "x", nil])
        #expect(try decode(keyed) == .update(relation: 7, old: [t("1"), .null, .null], oldIsKeyOnly: true, new: [t("2"), t("x"), .null]))
        let plain = Bytes("U").int32(7).char("N").tuple(["2", "y", nil])
        #expect(try decode(plain) == .update(relation: 7, old: nil, oldIsKeyOnly: false, new: [t("2"), t("y"), .null]))
    }

    @Test func deleteWithKeyOrFullOldRow() throws {
        #expect(try decode(Bytes("D").int32(7).char("K").tuple(["5", nil])) == .delete(relation: 7, old: [t("5"), .null], oldIsKeyOnly: true))
        #expect(try decode(Bytes("D").int32(7).char("O").tuple(["5", "v"])) == .delete(relation: 7, old: [t("5"), t("v")], oldIsKeyOnly: false))
    }

    @Test func truncateTypeOriginMessageAreSkippedWhole() throws {
        #expect(try decode(Bytes("T").int32(2).byte(1).int32(7).int32(8)) == .skipped(kind: UInt8(ascii: "T")))
        #expect(try decode(Bytes("Y").int32(16_400).string("public").string("mood")) == .skipped(kind: UInt8(ascii: "Y")))
        #expect(try decode(Bytes("O").int64(99).string("upstream")) == .skipped(kind: UInt8(ascii: "O")))
        #expect(try decode(Bytes("M").byte(1).int64(99).string("prefix").int32(3).raw([1, 2, 3])) == .skipped(kind: UInt8(ascii: "M")))
    }

    @Test func malformedMessagesAreErrors() throws {
        #expect(throws: PgOutputError.self) { try decode(Bytes("I").int32(7).char("N").int16(2).char("t").int32(10).raw([1, 2])) }
        #expect(throws: PgOutputError.self) { try decode(Bytes("Q").int32(1)) }
        #expect(throws: PgOutputError.self) { try decode(Bytes("D").int32(7).char("N").tuple(["1"])) }
        #expect(throws: PgOutputError.self) { try decode(Bytes("T").int32(3).byte(0).int32(1)) }
        #expect(throws: PgOutputError.self) { try decode(Bytes("B").int64(1).int64(2).int32(3).byte(0)) }  // trailing byte
        #expect(throws: PgOutputError.self) { try decode(Bytes("R").int32(1).raw([0x70, 0x75])) }  // unterminated string
    }

    @Test func framesOfTheStream() throws {
        let payload = Bytes("B").int64(100).int64(0).int32(1).bytes
        let w = Bytes("w").int64(100).int64(200).int64(0).raw(payload).bytes
        try w.withUnsafeBytes { raw in
            guard case .xlogData(let start, let end, let inner) = try ReplicationFrame.decode(raw) else {
                Issue.record("not XLogData")
                return
            }
            #expect(start == 100 && end == 200 && Array(inner) == payload)
        }
        let k = Bytes("k").int64(300).int64(0).byte(1).bytes
        #expect(try k.withUnsafeBytes { try ReplicationFrame.decode($0) } == .keepalive(walEnd: 300, replyRequested: true))
    }
}
