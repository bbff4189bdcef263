// What a job of kind `view` emits, and the line format that carries a changelog's rows from a
// source to the `ViewProcessor` (docs/DESIGN.md, "Views").

/// One key's new state in the view: its row (the view's columns: the schema's fields, then the
/// derived ones), or nil when the key leaves the view (deleted, filtered out, or undecodable).
public struct ViewChange: Sendable, Equatable {
    /// The key's parts, in `Pipeline.keyFields` order.
    public var key: [Value]
    public var row: [Value]?

    public init(key: [Value], row: [Value]?) {
        self.key = key
        self.row = row
    }
}

/// `U \t commit_time_ms \t row-image \n` (the row exists after the change) or
/// `D \t commit_time_ms \t row-image \n` (its key's row is gone). The row image is headerless CSV
/// of the schema's fields in PostgreSQL's text output (a delete's image may hold only the key's
/// columns: the rest are empty, as PostgreSQL sends only the replica identity of an old row).
/// A CDC source in view mode writes it; the time is the transaction's commit time.
public enum ViewChangeLine {
    public static func append(upsert: Bool, commitTimeMs: Int64, to out: inout [UInt8]) {
        out.append(upsert ? 85 : 68)  // U, D
        out.append(9)
        appendDecimal(commitTimeMs, to: &out)
        out.append(9)
    }

    /// The op, the time and where the row image starts, from a line's first bytes; nil when the
    /// line does not start as `append` writes it.
    static func header(_ line: UnsafeRawBufferPointer) -> (upsert: Bool, timeMs: Int64, imageStart: Int)? {
        guard line.count >= 4, line[0] == 85 || line[0] == 68, line[1] == 9 else { return nil }
        var i = 2
        var negative = false
        if line[i] == 45 { negative = true; i += 1 }
        var magnitude: Int64 = 0
        let digitsStart = i
        while i < line.count, line[i] >= 48, line[i] <= 57 {
            let (times10, o1) = magnitude.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(Int64(line[i] - 48))
            if o1 || o2 { return nil }
            magnitude = sum
            i += 1
        }
        guard i > digitsStart, i < line.count, line[i] == 9 else { return nil }
        return (line[0] == 85, negative ? -magnitude : magnitude, i + 1)
    }
}
