/// Renders fired rows as `window_start_ms,key,agg1,…` (the text form shared by the file sink,
/// `sluice verify` and the oracle): integers in decimal, an average as Swift's shortest
/// round-trip `Double` text.
public struct RowFormatter: Sendable {
    public let layout: AggregateLayout

    public init(layout: AggregateLayout) { self.layout = layout }

    /// The value of aggregate `index` of `row`, as it is stored in a typed sink.
    public enum Value: Equatable, Sendable {
        case integer(Int64)
        case real(Double)
    }

    @inline(__always)
    public func value(_ rows: RowBuffer, row: Int, aggregate index: Int) -> Value {
        switch layout.outputs[index] {
        case .count: return .integer(rows.slot(row: row, 0))
        case .slot(let s): return .integer(rows.slot(row: row, s))
        case .average(let s): return .real(Double(rows.slot(row: row, s)) / Double(rows.slot(row: row, 0)))
        }
    }

    public func text(_ rows: RowBuffer, row: Int) -> String {
        var out: [UInt8] = []
        append(rows, row: row, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the row's text without a line end.
    public func append(_ rows: RowBuffer, row: Int, to out: inout [UInt8]) {
        appendDecimal(rows.starts[row], to: &out)
        out.append(44)
        appendDecimal(rows.keys[row], to: &out)
        for index in layout.outputs.indices {
            out.append(44)
            switch value(rows, row: row, aggregate: index) {
            case .integer(let v): appendDecimal(v, to: &out)
            case .real(let d): out.append(contentsOf: "\(d)".utf8)
            }
        }
    }
}

@inline(__always)
public func appendDecimal(_ value: Int64, to out: inout [UInt8]) {
    if value < 0 {
        out.append(45)
        appendDecimal(value.magnitude, to: &out)
    } else {
        appendDecimal(UInt64(value), to: &out)
    }
}

@inline(__always)
public func appendDecimal(_ value: UInt64, to out: inout [UInt8]) {
    if value < 10 {
        out.append(UInt8(48 + value))
        return
    }
    var digits = 0
    var v = value
    while v > 0 { digits += 1; v /= 10 }
    let end = out.count + digits
    out.append(contentsOf: repeatElement(48, count: digits))
    v = value
    var i = end - 1
    out.withUnsafeMutableBufferPointer { buf in
        while v > 0 {
            buf[i] = UInt8(48 + v % 10)
            v /= 10
            i -= 1
        }
    }
}
