/// RFC 4180 CSV: records end at a newline outside quotes (so a quoted field may hold newlines and
/// the record is still one offset); fields are separated by the delimiter; a quoted field's `""`
/// is one quote. An unquoted empty field is null, `""` the empty string.
public enum CSVRecords {
    /// Where the record starting at `start` ends (the index of its `\n`, or `count` when the data
    /// ends first), and whether it is complete: false when the data ends inside a quoted field (the
    /// rest arrives with the next block).
    public static func recordEnd(_ base: UnsafeRawPointer, from start: Int, count n: Int) -> (end: Int, complete: Bool) {
        var i = start
        var quoted = false
        while i < n {
            let c = base.load(fromByteOffset: i, as: UInt8.self)
            if c == 34 /* " */ { quoted.toggle() }  // "" inside quotes toggles twice: still quoted
            else if c == 10 /* \n */, !quoted { return (i, true) }
            i += 1
        }
        return (n, !quoted)
    }

    /// One field of a record: its bytes (quotes removed, `""` unescaped) and whether it was quoted.
    public struct FieldText: Equatable, Sendable {
        public var bytes: [UInt8]
        public var quoted: Bool
        /// Null: unquoted and empty.
        public var isNull: Bool { !quoted && bytes.isEmpty }
    }

    public enum SplitFailure: Error, Equatable {
        /// A quote inside an unquoted field (1-based field number).
        case strayQuote(field: Int)
        /// A quoted field followed by something other than the delimiter or the end.
        case textAfterQuote(field: Int)
        /// The data ended inside a quoted field.
        case unterminatedQuote(field: Int)

        public var reason: String {
            switch self {
            case .strayQuote(let f): "CSV field \(f): a quote inside an unquoted field (quote the whole field and double the quote)"
            case .textAfterQuote(let f): "CSV field \(f): text after the closing quote"
            case .unterminatedQuote(let f): "CSV field \(f): the quoted field never ends"
            }
        }
    }

    /// Splits one record (without its line end; a trailing `\r` is dropped) into fields.
    public static func fields(_ record: UnsafeRawBufferPointer, delimiter: UInt8) -> Result<[FieldText], SplitFailure> {
        var n = record.count
        if n > 0, record[n - 1] == 13 /* \r */ { n -= 1 }
        var fields: [FieldText] = []
        var i = 0
        while true {
            var field = FieldText(bytes: [], quoted: false)
            let number = fields.count + 1
            if i < n, record[i] == 34 {
                field.quoted = true
                i += 1
                var closed = false
                while i < n {
                    let c = record[i]
                    if c == 34 {
                        if i + 1 < n, record[i + 1] == 34 {
                            field.bytes.append(34)
                            i += 2
                            continue
                        }
                        i += 1
                        closed = true
                        break
                    }
                    field.bytes.append(c)
                    i += 1
                }
                guard closed else { return .failure(.unterminatedQuote(field: number)) }
                if i < n, record[i] != delimiter { return .failure(.textAfterQuote(field: number)) }
            } else {
                let start = i
                while i < n, record[i] != delimiter {
                    if record[i] == 34 { return .failure(.strayQuote(field: number)) }
                    i += 1
                }
                field.bytes = Array(record[start..<i])
            }
            fields.append(field)
            if i >= n { break }
            i += 1  // the delimiter: another field follows, perhaps empty
            if i == n {
                fields.append(FieldText(bytes: [], quoted: false))
                break
            }
        }
        return .success(fields)
    }
}
