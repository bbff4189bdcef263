// Splits a partition's text into lines and parses a line into the schema's fields.
// Written for the oracle alone: plain byte scanning, no shared code with the engine's decoder.

import SluiceCore

/// The text of one partition cut into lines: `\n` ends a line; a last line without `\n` counts
/// only if it is not empty.
struct Lines {
    /// Calls `body(lineNumber, range)` for each line, in order; `range` excludes the `\n`.
    static func forEach(in text: [UInt8], _ body: (Int, Range<Int>) -> Void) {
        var lineNumber = 0
        var lineStart = 0
        for i in 0..<text.count where text[i] == UInt8(ascii: "\n") {
            body(lineNumber, lineStart..<i)
            lineNumber += 1
            lineStart = i + 1
        }
        if lineStart < text.count {
            body(lineNumber, lineStart..<text.count)
        }
    }
}

/// Parses lines of a schema into one Int64 per field (a uint64 kept as its bit pattern).
struct LineParser {
    let schema: Schema

    enum Outcome {
        case event([Int64])
        case malformed(String)
    }

    func parse(_ text: [UInt8], _ line: Range<Int>) -> Outcome {
        // Cut the line at every comma: n commas make n + 1 fields (an empty line is one empty field).
        var fieldRanges: [Range<Int>] = []
        var fieldStart = line.lowerBound
        for i in line where text[i] == UInt8(ascii: ",") {
            fieldRanges.append(fieldStart..<i)
            fieldStart = i + 1
        }
        fieldRanges.append(fieldStart..<line.upperBound)

        guard fieldRanges.count == schema.fields.count else {
            return .malformed("expected \(schema.fields.count) fields, got \(fieldRanges.count)")
        }

        var values: [Int64] = []
        values.reserveCapacity(fieldRanges.count)
        for (field, range) in zip(schema.fields, fieldRanges) {
            let value: Int64
            switch field.type {
            case .int64:
                guard let v = Self.parseInt64(text, range) else {
                    return .malformed("field '\(field.name)' is not an integer")
                }
                value = v
            case .uint64:
                guard let v = Self.parseUInt64(text, range) else {
                    return .malformed("field '\(field.name)' is not an integer")
                }
                value = Int64(bitPattern: v)
            }
            if let minimum = field.minimum, Self.isBelow(value, type: field.type, minimum: minimum) {
                return .malformed("field '\(field.name)' must be >= \(minimum)")
            }
            values.append(value)
        }
        return .event(values)
    }

    /// Compares the field's real value (not its bit pattern) with the minimum.
    static func isBelow(_ value: Int64, type: FieldType, minimum: Int64) -> Bool {
        switch type {
        case .int64: return value < minimum
        case .uint64: return minimum > 0 && UInt64(bitPattern: value) < UInt64(minimum)
        }
    }

    /// One or more ASCII digits, nothing else, at most UInt64.max.
    static func parseUInt64(_ text: [UInt8], _ range: Range<Int>) -> UInt64? {
        guard !range.isEmpty else { return nil }
        var value: UInt64 = 0
        for i in range {
            let byte = text[i]
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (plusDigit, overflow2) = times10.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
            if overflow1 || overflow2 { return nil }
            value = plusDigit
        }
        return value
    }

    /// An optional `-` then one or more ASCII digits, within Int64.min ... Int64.max.
    static func parseInt64(_ text: [UInt8], _ range: Range<Int>) -> Int64? {
        guard !range.isEmpty else { return nil }
        let negative = text[range.lowerBound] == UInt8(ascii: "-")
        let digits = negative ? (range.lowerBound + 1)..<range.upperBound : range
        guard let magnitude = parseUInt64(text, digits) else { return nil }
        if negative {
            // The magnitude of Int64.min is Int64.max + 1.
            guard magnitude <= UInt64(Int64.max) + 1 else { return nil }
            return magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude)
        } else {
            guard magnitude <= UInt64(Int64.max) else { return nil }
            return Int64(magnitude)
        }
    }
}
