/// Row images as the records engine reads them (`RecordDecoder(mode: .postgres)`): one headerless,
/// comma-separated CSV record of the schema's fields in PostgreSQL's text output, shared by the
/// outbox and CDC sources. NULL is an empty unquoted field; a value holding a comma, a quote, CR or
/// LF, or an empty string, is quoted with its quotes doubled (RFC 4180), so that `""` is the empty
/// string and never NULL, and a string never splits into two fields. Integers are never quoted, so
/// the bids path reads the same bytes as before.
enum RowImageCSV {
    static func append(_ value: some Collection<UInt8>, to out: inout [UInt8]) {
        guard value.isEmpty || value.contains(where: { $0 == 44 || $0 == 34 || $0 == 10 || $0 == 13 }) else {
            out.append(contentsOf: value)
            return
        }
        out.append(34)
        for byte in value {
            if byte == 34 { out.append(34) }
            out.append(byte)
        }
        out.append(34)
    }
}
