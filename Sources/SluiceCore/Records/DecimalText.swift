/// Exact decimals as scaled Int64s: canonical text (`123.40`, `-0.05`) and parsing of decimal text.
public enum DecimalText {
    /// Powers of ten up to 10^18.
    public static let powers: [Int64] = (0...18).map { e in (0..<e).reduce(Int64(1)) { p, _ in p * 10 } }

    /// Canonical text: an optional `-`, the integer digits, and exactly `scale` fraction digits.
    public static func format(_ unscaled: Int64, scale: Int) -> String {
        let magnitude = unscaled.magnitude
        var digits = String(magnitude)
        if scale > 0 {
            if digits.count <= scale { digits = String(repeating: "0", count: scale - digits.count + 1) + digits }
            digits.insert(".", at: digits.index(digits.endIndex, offsetBy: -scale))
        }
        return unscaled < 0 ? "-" + digits : digits
    }

    public enum Failure: Error, Equatable {
        /// Not `-?digits[.digits][e±digits]`.
        case syntax
        /// More fraction digits than the scale.
        case tooPrecise
        /// Does not fit a scaled Int64.
        case outOfRange
    }

    /// Parses `-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?` into `unscaled` at `scale`. With
    /// `trailingZerosFree` (PostgreSQL's `numeric` text, which prints the column's own scale),
    /// fraction digits past the scale are accepted when they are all zeros.
    public static func parse(_ text: some Collection<UInt8>, scale: Int, exponent allowExponent: Bool = true,
                             trailingZerosFree: Bool = false) -> Result<Int64, Failure> {
        var i = text.startIndex
        var negative = false
        if i != text.endIndex, text[i] == UInt8(ascii: "-") {
            negative = true
            i = text.index(after: i)
        }
        var digits: [UInt8] = []  // significant digits, integer then fraction
        var fraction = 0
        var sawDigit = false
        while i != text.endIndex, text[i] >= 48, text[i] <= 57 {
            digits.append(text[i] - 48); sawDigit = true; i = text.index(after: i)
        }
        guard sawDigit else { return .failure(.syntax) }
        if i != text.endIndex, text[i] == UInt8(ascii: ".") {
            i = text.index(after: i)
            var any = false
            while i != text.endIndex, text[i] >= 48, text[i] <= 57 {
                digits.append(text[i] - 48); fraction += 1; any = true; i = text.index(after: i)
            }
            guard any else { return .failure(.syntax) }
        }
        if allowExponent, i != text.endIndex, text[i] == UInt8(ascii: "e") || text[i] == UInt8(ascii: "E") {
            i = text.index(after: i)
            var expNegative = false
            if i != text.endIndex, text[i] == UInt8(ascii: "+") || text[i] == UInt8(ascii: "-") {
                expNegative = text[i] == UInt8(ascii: "-"); i = text.index(after: i)
            }
            var exponent = 0
            var any = false
            while i != text.endIndex, text[i] >= 48, text[i] <= 57 {
                exponent = min(exponent * 10 + Int(text[i] - 48), 10_000); any = true; i = text.index(after: i)
            }
            guard any else { return .failure(.syntax) }
            fraction -= expNegative ? -exponent : exponent
        }
        guard i == text.endIndex else { return .failure(.syntax) }
        // Now value = digits / 10^fraction. Bring it to `scale` fraction digits.
        if fraction > scale {
            // Strict (JSON, CSV): more fraction digits than the scale is an error, zeros or not.
            // PostgreSQL's text prints the column's scale: zeros past ours lose nothing.
            guard trailingZerosFree else { return .failure(.tooPrecise) }
            let extra = fraction - scale
            guard digits.suffix(min(extra, digits.count)).allSatisfy({ $0 == 0 }) else { return .failure(.tooPrecise) }
            digits.removeLast(min(extra, digits.count))
            fraction = scale
        }
        var magnitude: UInt64 = 0
        for d in digits {
            let (m1, o1) = magnitude.multipliedReportingOverflow(by: 10)
            let (m2, o2) = m1.addingReportingOverflow(UInt64(d))
            if o1 || o2 { return .failure(.outOfRange) }
            magnitude = m2
        }
        for _ in 0..<(scale - fraction) {
            let (m, o) = magnitude.multipliedReportingOverflow(by: 10)
            if o { return .failure(.outOfRange) }
            magnitude = m
        }
        if negative {
            guard magnitude <= UInt64(Int64.max) + 1 else { return .failure(.outOfRange) }
            return .success(magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude))
        }
        guard magnitude <= UInt64(Int64.max) else { return .failure(.outOfRange) }
        return .success(Int64(magnitude))
    }

    /// Rescales `unscaled` from scale `from` to scale `to` (>= from) exactly, or nil on overflow.
    public static func rescale(_ unscaled: Int64, from: Int, to: Int) -> Int64? {
        guard to >= from else { return nil }
        guard to - from <= 18 else { return unscaled == 0 ? 0 : nil }
        let (v, o) = unscaled.multipliedReportingOverflow(by: powers[to - from])
        return o ? nil : v
    }
}
