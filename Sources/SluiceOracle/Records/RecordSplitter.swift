// Cuts a partition's text into records for the records oracle (issue 12's splitting rules, which
// the engine follows too): JSON records end at every `\n`; CSV records end at a `\n` outside
// quotes; a trailing `\r` of a record is removed; text ending in `\n` has no empty record after
// it; every record, an empty one too, takes one offset; a CSV header takes none.

import SluiceCore

struct SplitRecord {
    /// The record's bytes: no `\n` at its end, no trailing `\r`.
    var bytes: ArraySlice<UInt8>
    /// CSV only: the text ended inside a quoted field (a dead letter).
    var unterminated: Bool
}

enum RecordSplitter {
    /// All records of `text`, in order; with a CSV header, the header apart (nil when the text is
    /// empty). Record i has offset i.
    static func split(_ text: [UInt8], format: RecordFormat) -> (header: SplitRecord?, records: [SplitRecord]) {
        var records: [SplitRecord] = []
        var start = 0
        var quoted = false
        let csv: Bool
        if case .csv = format { csv = true } else { csv = false }
        func cut(_ end: Int, unterminated: Bool) {
            var e = end
            if e > start, text[e - 1] == UInt8(ascii: "\r") { e -= 1 }
            records.append(SplitRecord(bytes: text[start..<e], unterminated: unterminated))
        }
        for i in 0..<text.count {
            let c = text[i]
            // Every quote toggles (`""` inside a quoted field toggles twice); a quote inside an
            // unquoted field also toggles, which the field splitter then refuses anyway.
            if csv, c == UInt8(ascii: "\"") { quoted.toggle() }
            if c == UInt8(ascii: "\n"), !quoted {
                cut(i, unterminated: false)
                start = i + 1
            }
        }
        if start < text.count { cut(text.count, unterminated: quoted) }
        if case .csv(header: true, _) = format, !records.isEmpty {
            return (records.removeFirst(), records)
        }
        return (nil, records)
    }

    /// One CSV field: its bytes (quotes removed, `""` unescaped), and whether it was quoted.
    struct CSVField: Equatable {
        var bytes: [UInt8]
        var quoted: Bool
    }

    /// Splits one CSV record (RFC 4180) into fields, or says why it cannot.
    static func csvFields(_ record: ArraySlice<UInt8>, delimiter: UInt8) -> Result<[CSVField], OracleJSONError> {
        let b = Array(record)
        var fields: [CSVField] = []
        var i = 0
        while true {
            if i < b.count, b[i] == UInt8(ascii: "\"") {
                i += 1
                var out: [UInt8] = []
                var closed = false
                while i < b.count {
                    if b[i] == UInt8(ascii: "\"") {
                        if i + 1 < b.count, b[i + 1] == UInt8(ascii: "\"") { out.append(0x22); i += 2; continue }
                        i += 1
                        closed = true
                        break
                    }
                    out.append(b[i])
                    i += 1
                }
                guard closed else { return .failure(OracleJSONError("unterminated quoted field \(fields.count + 1)")) }
                fields.append(CSVField(bytes: out, quoted: true))
                if i == b.count { return .success(fields) }
                guard b[i] == delimiter else {
                    return .failure(OracleJSONError("field \(fields.count): text after the closing quote"))
                }
                i += 1
            } else {
                var out: [UInt8] = []
                while i < b.count, b[i] != delimiter {
                    if b[i] == UInt8(ascii: "\"") { return .failure(OracleJSONError("field \(fields.count + 1): a quote inside an unquoted field")) }
                    out.append(b[i])
                    i += 1
                }
                fields.append(CSVField(bytes: out, quoted: false))
                if i == b.count { return .success(fields) }
                i += 1  // the delimiter: another field follows, perhaps empty
            }
        }
    }
}
