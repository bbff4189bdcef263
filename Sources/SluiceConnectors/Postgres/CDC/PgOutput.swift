// The messages of logical replication as PostgreSQL sends them: the stream's frames (XLogData,
// keepalive) and, inside XLogData, the pgoutput plugin's protocol version 1. Big-endian integers,
// NUL-terminated strings. Reference: PostgreSQL's "Logical Replication Message Formats".

/// A column value in a tuple.
public enum PgOutputValue: Sendable, Equatable {
    case null
    /// A TOASTed value that the update did not change: PostgreSQL does not send it again.
    case unchangedToast
    /// The value in the type's text form.
    case text([UInt8])
}

public struct PgOutputRelation: Sendable, Equatable {
    public struct Column: Sendable, Equatable {
        public var name: String
        public var typeOid: UInt32
        /// Part of the replica identity (the key) when bit 1 is set.
        public var isKey: Bool

        public init(name: String, typeOid: UInt32, isKey: Bool) {
            self.name = name
            self.typeOid = typeOid
            self.isKey = isKey
        }
    }
    public var id: UInt32
    public var namespace: String
    public var name: String
    /// `d` default (primary key), `n` nothing, `f` full, `i` index.
    public var replicaIdentity: UInt8
    public var columns: [Column]

    public init(id: UInt32, namespace: String, name: String, replicaIdentity: UInt8, columns: [Column]) {
        self.id = id
        self.namespace = namespace
        self.name = name
        self.replicaIdentity = replicaIdentity
        self.columns = columns
    }

    /// `namespace.name`, as change events name their table.
    public var qualifiedName: String { namespace + "." + name }
}

public enum PgOutputMessage: Sendable, Equatable {
    /// `finalLSN` is the transaction's commit LSN; the commit time counts µs since 2000-01-01.
    case begin(finalLSN: Int64, commitTimeMicros: Int64, xid: UInt32)
    /// `endLSN` is just past the commit record: where a stream resumes after this transaction.
    case commit(commitLSN: Int64, endLSN: Int64, commitTimeMicros: Int64)
    case relation(PgOutputRelation)
    case insert(relation: UInt32, new: [PgOutputValue])
    /// `old` is the whole old row (`O`, replica identity full), only its key (`K`), or absent
    /// (the key did not change under the default identity).
    case update(relation: UInt32, old: [PgOutputValue]?, oldIsKeyOnly: Bool, new: [PgOutputValue])
    case delete(relation: UInt32, old: [PgOutputValue], oldIsKeyOnly: Bool)
    /// Truncate `T`, type `Y`, origin `O`, logical message `M`: read whole and checked, no row change.
    case skipped(kind: UInt8)
}

public struct PgOutputError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// One frame of the replication stream.
public enum ReplicationFrame: Equatable {
    /// `w`: WAL data starting at `walStart`; the server's WAL ends at `walEnd`.
    case xlogData(walStart: Int64, walEnd: Int64, payload: UnsafeRawBufferPointer)
    /// `k`: the server's position; `replyRequested` asks for a status update at once.
    case keepalive(walEnd: Int64, replyRequested: Bool)

    public static func == (a: ReplicationFrame, b: ReplicationFrame) -> Bool {
        switch (a, b) {
        case let (.xlogData(s1, e1, p1), .xlogData(s2, e2, p2)): return s1 == s2 && e1 == e2 && Array(p1) == Array(p2)
        case let (.keepalive(e1, r1), .keepalive(e2, r2)): return e1 == e2 && r1 == r2
        default: return false
        }
    }

    public static func decode(_ bytes: UnsafeRawBufferPointer) throws -> ReplicationFrame {
        var r = PgOutputReader(bytes)
        switch try r.byte() {
        case UInt8(ascii: "w"):
            let start = try r.int64(), end = try r.int64()
            _ = try r.int64()  // the server's clock
            return .xlogData(walStart: start, walEnd: end, payload: r.rest())
        case UInt8(ascii: "k"):
            let end = try r.int64()
            _ = try r.int64()
            return .keepalive(walEnd: end, replyRequested: try r.byte() != 0)
        case let other:
            throw PgOutputError("unknown replication frame '\(PgOutputReader.printable(other))'")
        }
    }
}

public enum PgOutputDecoder {
    public static func decode(_ bytes: UnsafeRawBufferPointer) throws -> PgOutputMessage {
        var r = PgOutputReader(bytes)
        let kind = try r.byte()
        let message: PgOutputMessage
        switch kind {
        case UInt8(ascii: "B"):
            message = .begin(finalLSN: try r.int64(), commitTimeMicros: try r.int64(), xid: try r.uint32())
        case UInt8(ascii: "C"):
            _ = try r.byte()  // flags, unused
            message = .commit(commitLSN: try r.int64(), endLSN: try r.int64(), commitTimeMicros: try r.int64())
        case UInt8(ascii: "R"):
            let id = try r.uint32(), namespace = try r.string(), name = try r.string()
            let identity = try r.byte()
            let count = try r.int16()
            var columns: [PgOutputRelation.Column] = []
            for _ in 0..<max(0, count) {
                let flags = try r.byte(), column = try r.string(), type = try r.uint32()
                _ = try r.uint32()  // type modifier
                columns.append(.init(name: column, typeOid: type, isKey: flags & 1 != 0))
            }
            message = .relation(PgOutputRelation(id: id, namespace: namespace.isEmpty ? "pg_catalog" : namespace, name: name,
                                                 replicaIdentity: identity, columns: columns))
        case UInt8(ascii: "I"):
            let id = try r.uint32()
            try r.expect("N", in: "insert")
            message = .insert(relation: id, new: try r.tuple())
        case UInt8(ascii: "U"):
            let id = try r.uint32()
            var old: [PgOutputValue]?
            var keyOnly = false
            var marker = try r.byte()
            if marker == UInt8(ascii: "K") || marker == UInt8(ascii: "O") {
                keyOnly = marker == UInt8(ascii: "K")
                old = try r.tuple()
                marker = try r.byte()
            }
            guard marker == UInt8(ascii: "N") else {
                throw PgOutputError("update: expected the new tuple 'N', got '\(PgOutputReader.printable(marker))'")
            }
            message = .update(relation: id, old: old, oldIsKeyOnly: keyOnly, new: try r.tuple())
        case UInt8(ascii: "D"):
            let id = try r.uint32()
            let marker = try r.byte()
            guard marker == UInt8(ascii: "K") || marker == UInt8(ascii: "O") else {
                throw PgOutputError("delete: expected the old tuple 'K' or 'O', got '\(PgOutputReader.printable(marker))'")
            }
            message = .delete(relation: id, old: try r.tuple(), oldIsKeyOnly: marker == UInt8(ascii: "K"))
        case UInt8(ascii: "T"):
            let count = try r.uint32()
            _ = try r.byte()  // options
            for _ in 0..<count { _ = try r.uint32() }
            message = .skipped(kind: kind)
        case UInt8(ascii: "Y"):
            _ = try r.uint32()
            _ = try r.string()
            _ = try r.string()
            message = .skipped(kind: kind)
        case UInt8(ascii: "O"):
            _ = try r.int64()
            _ = try r.string()
            message = .skipped(kind: kind)
        case UInt8(ascii: "M"):
            _ = try r.byte()  // transactional?
            _ = try r.int64()
            _ = try r.string()
            let length = try r.uint32()
            try r.skip(Int(length))
            message = .skipped(kind: kind)
        default:
            throw PgOutputError("unknown pgoutput message '\(PgOutputReader.printable(kind))' (Sluice speaks protocol version 1)")
        }
        guard r.isAtEnd else { throw PgOutputError("'\(PgOutputReader.printable(kind))' message: \(r.left) bytes left over") }
        return message
    }
}

/// Bounds-checked big-endian reads over one message.
struct PgOutputReader {
    private let bytes: UnsafeRawBufferPointer
    private var at = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var isAtEnd: Bool { at == bytes.count }
    var left: Int { bytes.count - at }

    static func printable(_ byte: UInt8) -> String {
        byte >= 32 && byte < 127 ? String(UnicodeScalar(byte)) : "0x" + String(byte, radix: 16)
    }

    private func need(_ n: Int) throws {
        guard n >= 0, bytes.count - at >= n else { throw PgOutputError("message truncated: \(n) bytes needed at byte \(at) of \(bytes.count)") }
    }

    mutating func byte() throws -> UInt8 {
        try need(1)
        defer { at += 1 }
        return bytes[at]
    }

    mutating func expect(_ c: Unicode.Scalar, in what: String) throws {
        let b = try byte()
        guard b == UInt8(ascii: c) else { throw PgOutputError("\(what): expected '\(c)', got '\(PgOutputReader.printable(b))'") }
    }

    mutating func uint32() throws -> UInt32 {
        try need(4)
        var v: UInt32 = 0
        for i in 0..<4 { v = v << 8 | UInt32(bytes[at + i]) }
        at += 4
        return v
    }

    mutating func int16() throws -> Int {
        try need(2)
        let v = Int16(bitPattern: UInt16(bytes[at]) << 8 | UInt16(bytes[at + 1]))
        at += 2
        return Int(v)
    }

    mutating func int64() throws -> Int64 {
        try need(8)
        var v: UInt64 = 0
        for i in 0..<8 { v = v << 8 | UInt64(bytes[at + i]) }
        at += 8
        return Int64(bitPattern: v)
    }

    mutating func string() throws -> String {
        guard let end = bytes[at...].firstIndex(of: 0) else { throw PgOutputError("message truncated: a string without its NUL at byte \(at)") }
        defer { at = end + 1 }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[at..<end]), as: UTF8.self)
    }

    mutating func skip(_ n: Int) throws {
        try need(n)
        at += n
    }

    mutating func rest() -> UnsafeRawBufferPointer {
        defer { at = bytes.count }
        return UnsafeRawBufferPointer(rebasing: bytes[at...])
    }

    /// TupleData: a column count, then per column `n` (null), `u` (unchanged TOAST) or `t` + length + text.
    mutating func tuple() throws -> [PgOutputValue] {
        let count = try int16()
        guard count >= 0 else { throw PgOutputError("tuple with a negative column count \(count)") }
        var values: [PgOutputValue] = []
        values.reserveCapacity(count)
        for _ in 0..<count {
            switch try byte() {
            case UInt8(ascii: "n"): values.append(.null)
            case UInt8(ascii: "u"): values.append(.unchangedToast)
            case UInt8(ascii: "t"):
                let length = Int(try uint32())
                try need(length)
                values.append(.text(Array(UnsafeRawBufferPointer(rebasing: bytes[at..<(at + length)]))))
                at += length
            case let other:
                throw PgOutputError("tuple column kind '\(PgOutputReader.printable(other))' (binary values are not requested)")
            }
        }
        return values
    }
}
