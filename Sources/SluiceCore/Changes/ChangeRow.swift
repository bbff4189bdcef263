// One row change captured from a database (PostgreSQL logical replication), as a job of kind
// `changes` writes it to its sink, and the line format that carries it from the source to the
// `ChangeLogProcessor`.

/// A change event: which table, what happened, the row before and after, and where it sits in the
/// database's history. `(lsn, index)` identifies it: `lsn` is the commit LSN of its transaction
/// (every change of a transaction shares it), `index` its 0-based place in the transaction.
public struct ChangeRow: Sendable, Equatable {
    public var lsn: Int64
    public var index: Int64
    /// The transaction's commit time, milliseconds since the Unix epoch.
    public var commitTimeMs: Int64
    public var table: String
    /// `insert`, `update` or `delete`.
    public var op: String
    /// The row as a JSON object of column → text value (or null); empty when there is none
    /// (`before` of an insert, `after` of a delete).
    public var before: String
    public var after: String

    public init(lsn: Int64, index: Int64, commitTimeMs: Int64, table: String, op: String, before: String, after: String) {
        self.lsn = lsn
        self.index = index
        self.commitTimeMs = commitTimeMs
        self.table = table
        self.op = op
        self.before = before
        self.after = after
    }
}

/// The change-line format: `lsn \t index \t commit_time_ms \t table \t op \t before \t after \n`.
/// The numbers are integers as `appendDecimal` writes them (a commit before 1970 is negative).
/// Tabs separate because none of the fields can hold one: the numbers and `op` cannot, the table
/// name is written escaped (`appendTable`), and the JSON texts escape every control character.
public enum ChangeLine {
    public static let fieldCount = 7

    public static func append(_ row: ChangeRow, to out: inout [UInt8]) {
        appendDecimal(row.lsn, to: &out)
        out.append(9)
        appendDecimal(row.index, to: &out)
        out.append(9)
        appendDecimal(row.commitTimeMs, to: &out)
        out.append(9)
        appendTable(row.table.utf8, to: &out)
        out.append(9)
        out.append(contentsOf: row.op.utf8)
        out.append(9)
        out.append(contentsOf: row.before.utf8)
        out.append(9)
        out.append(contentsOf: row.after.utf8)
        out.append(10)
    }

    /// Parses one line (without its `\n`); nil with a reason when it is not a change line.
    public static func parse(_ line: UnsafeRawBufferPointer) -> Result<ChangeRow, ChangeLineError> {
        var fields: [UnsafeRawBufferPointer] = []
        fields.reserveCapacity(fieldCount)
        var start = 0
        for i in 0..<line.count where line[i] == 9 {
            fields.append(UnsafeRawBufferPointer(rebasing: line[start..<i]))
            start = i + 1
        }
        fields.append(UnsafeRawBufferPointer(rebasing: line[start..<line.count]))
        guard fields.count == fieldCount else { return .failure(.fieldCount(fields.count)) }
        guard let lsn = integer(fields[0]) else { return .failure(.notAnInteger("lsn")) }
        guard let index = integer(fields[1]) else { return .failure(.notAnInteger("index")) }
        guard let time = integer(fields[2]) else { return .failure(.notAnInteger("commit_time_ms")) }
        let op = String(decoding: fields[4], as: UTF8.self)
        guard op == "insert" || op == "update" || op == "delete" else { return .failure(.unknownOp(op)) }
        return .success(ChangeRow(lsn: lsn, index: index, commitTimeMs: time, table: table(fields[3]),
                                  op: op, before: String(decoding: fields[5], as: UTF8.self),
                                  after: String(decoding: fields[6], as: UTF8.self)))
    }

    /// The table field: `\`, tab, LF and CR written as `\\`, `\t`, `\n`, `\r`. A quoted
    /// PostgreSQL identifier may hold them (`CREATE SCHEMA "a<tab>b"`); written raw, a tab split
    /// the line and the changes job dead-lettered every change of the table (found with the
    /// pgoutput fuzz target's check, by a hand-made input).
    public static func appendTable(_ name: some Sequence<UInt8>, to out: inout [UInt8]) {
        for b in name {
            switch b {
            case 92: out.append(92); out.append(92)
            case 9: out.append(92); out.append(116)
            case 10: out.append(92); out.append(110)
            case 13: out.append(92); out.append(114)
            default: out.append(b)
            }
        }
    }

    /// Undoes `appendTable`; a backslash before anything else is kept as it is.
    static func table(_ field: UnsafeRawBufferPointer) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(field.count)
        var i = 0
        while i < field.count {
            let b = field[i]
            if b == 92, i + 1 < field.count {
                switch field[i + 1] {
                case 92: out.append(92); i += 2; continue
                case 116: out.append(9); i += 2; continue
                case 110: out.append(10); i += 2; continue
                case 114: out.append(13); i += 2; continue
                default: break
                }
            }
            out.append(b)
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `-?[0-9]+` within Int64: what `appendDecimal` writes. Found by fuzzing the CDC decoder: a
    /// commit time before 1970 is negative and was refused, so the changes job dead-lettered a
    /// change the decoder had written; and (seen while fixing it) 19 nines overflowed and trapped.
    private static func integer(_ bytes: UnsafeRawBufferPointer) -> Int64? {
        var digits = bytes[...]
        let negative = digits.first == 45  // -
        if negative { digits = digits.dropFirst() }
        guard !digits.isEmpty else { return nil }
        var magnitude: UInt64 = 0
        for b in digits {
            guard b >= 48, b <= 57 else { return nil }
            let (times10, o1) = magnitude.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(UInt64(b - 48))
            if o1 || o2 { return nil }
            magnitude = sum
        }
        if negative {
            guard magnitude <= UInt64(Int64.max) + 1 else { return nil }
            return magnitude == UInt64(Int64.max) + 1 ? .min : -Int64(magnitude)
        }
        return magnitude <= UInt64(Int64.max) ? Int64(magnitude) : nil
    }
}

public enum ChangeLineError: Error, Equatable, Sendable, CustomStringConvertible {
    case fieldCount(Int)
    case notAnInteger(String)
    case unknownOp(String)

    public var description: String {
        switch self {
        case .fieldCount(let n): return "expected \(ChangeLine.fieldCount) tab-separated fields, got \(n)"
        case .notAnInteger(let field): return "field '\(field)' is not an integer"
        case .unknownOp(let op): return "unknown op '\(op)'; expected insert, update or delete"
        }
    }
}
