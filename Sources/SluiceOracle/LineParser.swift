// Splits a partition's text into lines and parses a line into the schema's fields.
// Written for the oracle alone: plain byte scanning, no shared code with the engine's decoder.

import SluiceCore

/// The text of one partition cut into lines: `\n` (or `\r\n`) ends a line; a last line without
/// `\n` counts only if it is not empty.
struct Lines {
    /// Calls `body(lineNumber, range)` for each line, in order; `range` excludes the `\n` (and a `\r` before it).
    static func forEach(in text: UnsafeBufferPointer<UInt8>, _ body: (Int, Range<Int>) -> Void) {
        var lineNumber = 0
        var lineStart = 0
        var i = 0
        while i < text.count {
            if text[i] == UInt8(ascii: "\n") {
                // CRLF: one `\r` before the `\n` is part of the line end, as in the engine.
                let end = i > lineStart && text[i - 1] == UInt8(ascii: "\r") ? i - 1 : i
                body(lineNumber, lineStart..<end)
                lineNumber += 1
                lineStart = i + 1
            }
            i += 1
        }
        if lineStart < text.count {
            body(lineNumber, lineStart..<text.count)
        }
    }
}

/// Parses lines of a schema into one Int64 per field (a uint64 kept as its bit pattern).
struct LineParser {
    let schema: Schema
    /// Per field: unsigned or not, and its minimum (copied out of the schema once).
    private let unsigned: [Bool]
    private let minimums: [Int64?]

    init(schema: Schema) {
        self.schema = schema
        unsigned = schema.fields.map { $0.type == .uint64 }
        minimums = schema.fields.map(\.minimum)
    }

    enum Outcome {
        case event([Int64])
        case malformed(String)
    }

    func parse(_ text: UnsafeBufferPointer<UInt8>, _ line: Range<Int>) -> Outcome {
        // n commas make n + 1 fields (an empty line is one empty field).
        var fieldCount = 1
        var i = line.lowerBound
        while i < line.upperBound {
            if text[i] == UInt8(ascii: ",") { fieldCount += 1 }
            i += 1
        }
        guard fieldCount == schema.fields.count else {
            return .malformed("expected \(schema.fields.count) fields, got \(fieldCount)")
        }

        var values: [Int64] = []
        values.reserveCapacity(fieldCount)
        var fieldStart = line.lowerBound
        for index in 0..<fieldCount {
            var fieldEnd = fieldStart
            while fieldEnd < line.upperBound && text[fieldEnd] != UInt8(ascii: ",") { fieldEnd += 1 }
            let range = fieldStart..<fieldEnd
            fieldStart = fieldEnd + 1

            let value: Int64
            if unsigned[index] {
                guard let v = Self.parseUInt64(text, range) else {
                    return .malformed("field '\(schema.fields[index].name)' is not an integer")
                }
                value = Int64(bitPattern: v)
            } else {
                guard let v = Self.parseInt64(text, range) else {
                    return .malformed("field '\(schema.fields[index].name)' is not an integer")
                }
                value = v
            }
            if let minimum = minimums[index], Self.isBelow(value, unsigned: unsigned[index], minimum: minimum) {
                return .malformed("field '\(schema.fields[index].name)' must be >= \(minimum)")
            }
            values.append(value)
        }
        return .event(values)
    }

    /// Compares the field's real value (not its bit pattern) with the minimum.
    static func isBelow(_ value: Int64, unsigned: Bool, minimum: Int64) -> Bool {
        unsigned ? minimum > 0 && UInt64(bitPattern: value) < UInt64(minimum) : value < minimum
    }

    /// One or more ASCII digits, nothing else, at most UInt64.max.
    static func parseUInt64(_ text: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> UInt64? {
        guard !range.isEmpty else { return nil }
        var value: UInt64 = 0
        var i = range.lowerBound
        while i < range.upperBound {
            let byte = text[i]
            i += 1
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (plusDigit, overflow2) = times10.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
            if overflow1 || overflow2 { return nil }
            value = plusDigit
        }
        return value
    }

    /// An optional `-` then one or more ASCII digits, within Int64.min ... Int64.max.
    static func parseInt64(_ text: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Int64? {
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
