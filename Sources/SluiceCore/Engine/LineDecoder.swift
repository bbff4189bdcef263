// Decodes one CSV line into Int64 field values straight from the bytes: no String per line.
// The rules (docs/WORKLOAD.md, docs/DESIGN.md): exactly one value per schema field, separated by
// `,`; an int64 is `-?[0-9]+`, a uint64 `[0-9]+` (kept as its bit pattern), both in range; a field
// with a minimum must not be below it; the time field must lie within ±2^62 ms so that window
// arithmetic can never overflow.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public enum DecodeFailure: Equatable, Sendable {
    case fieldCount(expected: Int, got: Int)
    case notAnInteger(field: Int)
    case belowMinimum(field: Int)
    case timeOutOfRange

    public func reason(schema: Schema) -> String {
        switch self {
        case .fieldCount(let expected, let got): return "expected \(expected) fields, got \(got)"
        case .notAnInteger(let f): return "field '\(schema.fields[f].name)' is not an integer"
        case .belowMinimum(let f):
            return "field '\(schema.fields[f].name)' must be >= \(schema.fields[f].minimum ?? 0)"
        case .timeOutOfRange: return "event time out of range (|t| > 2^62 ms)"
        }
    }
}

public struct LineDecoder: Sendable {
    public static let timeLimit: Int64 = 1 << 62

    private let isUnsigned: [Bool]
    private let minimums: [Int64]
    /// Only the fields that have a minimum, so that the common line checks one or none.
    private let minimumChecks: [(field: Int, minimum: Int64)]
    private let timeIndex: Int
    public let fieldCount: Int

    public init(schema: Schema, timeIndex: Int) {
        isUnsigned = schema.fields.map { $0.type == .uint64 }
        minimums = schema.fields.map { $0.minimum ?? Int64.min }
        minimumChecks = schema.fields.enumerated().compactMap { f, field in
            field.type == .uint64 ? nil : field.minimum.map { (f, $0) }
        }
        self.timeIndex = timeIndex
        fieldCount = schema.fields.count
    }

    /// Decodes `line` (without its `\n`) into `values[0..<fieldCount]`; nil on success.
    /// `readable` (>= line.count) is how many bytes from the line's start may be read: the line end
    /// and what follows it, which lets digits be scanned eight at a time up to the `\n`.
    @inline(__always)
    public func decode(_ line: UnsafeRawBufferPointer, readable: Int? = nil,
                       into values: UnsafeMutablePointer<Int64>) -> DecodeFailure? {
        var i = 0
        let n = line.count
        let limit = readable ?? n
        var field = 0
        while true {
            if field == fieldCount { return .fieldCount(expected: fieldCount, got: countFields(line)) }
            // One field: [-]digits, ending at ',' or end of line.
            var negative = false
            if i < n, line[i] == 45 /* - */, !isUnsigned[field] {
                negative = true
                i += 1
            }
            let digitsStart = i
            var magnitude: UInt64 = 0
            if let base = line.baseAddress {
                (magnitude, i) = LineDecoder.scanDigits(base, from: i, readable: limit, end: n)
            }
            // Up to 19 digits cannot overflow a UInt64; only longer runs need the careful count.
            let overflow = i - digitsStart > 19 && LineDecoder.overflows(line, from: digitsStart, to: i)
            if i == digitsStart || overflow || (i < n && line[i] != 44 /* , */) {
                if i < n, line[i] != 44, countFields(line) != fieldCount {
                    return .fieldCount(expected: fieldCount, got: countFields(line))
                }
                return .notAnInteger(field: field)
            }
            let value: Int64
            if isUnsigned[field] {
                value = Int64(bitPattern: magnitude)
            } else if negative {
                guard magnitude <= UInt64(Int64.max) + 1 else { return .notAnInteger(field: field) }
                value = magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude)
            } else {
                guard magnitude <= UInt64(Int64.max) else { return .notAnInteger(field: field) }
                value = Int64(magnitude)
            }
            values[field] = value
            field += 1
            if i == n { break }
            i += 1  // skip ','
            if i == n {  // a trailing ',' starts an empty last field
                return field == fieldCount ? .fieldCount(expected: fieldCount, got: field + 1) : .notAnInteger(field: field)
            }
        }
        if field != fieldCount { return .fieldCount(expected: fieldCount, got: field) }
        for f in 0..<fieldCount where !isUnsigned[f] && values[f] < minimums[f] {
            return .belowMinimum(field: f)
        }
        let t = values[timeIndex]
        if t > LineDecoder.timeLimit || t < -LineDecoder.timeLimit { return .timeOutOfRange }
        return nil
    }

    /// Decodes the line that starts at `start` in `base[0..<count]` (lines end with `\n` or `\r\n`;
    /// the last may end with the data). Returns where the line ends (its `\n`, or `count`) and the failure,
    /// if any. A valid line is decoded in one pass that also finds its end; any irregularity falls
    /// back to finding the end with memchr and `decode`, so that both agree on every input.
    @inline(__always)
    public func decodeLine(_ base: UnsafeRawPointer, from start: Int, count n: Int,
                           into values: UnsafeMutablePointer<Int64>) -> (end: Int, failure: DecodeFailure?) {
        if let end = decodePlainLine(base, from: start, count: n, into: values) {
            return (end, checkRanges(base, from: start, end: end, count: n, into: values))
        }
        var i = start
        var field = 0
        fast: while true {
            if field == fieldCount { break fast }
            var negative = false
            if i < n, base.load(fromByteOffset: i, as: UInt8.self) == 45 /* - */ {
                if isUnsigned[field] { break fast }
                negative = true
                i += 1
            }
            let digitsStart = i
            let magnitude: UInt64
            (magnitude, i) = LineDecoder.scanDigits(base, from: i, readable: n, end: n)
            let digits = i - digitsStart
            // No digits, or more than 19 (which might overflow): the careful path decides.
            if digits == 0 || digits > 19 { break fast }
            if isUnsigned[field] {
                values[field] = Int64(bitPattern: magnitude)
            } else if negative {
                if magnitude > UInt64(Int64.max) + 1 { break fast }
                values[field] = magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude)
            } else {
                if magnitude > UInt64(Int64.max) { break fast }
                values[field] = Int64(magnitude)
            }
            field += 1
            let next: UInt8 = i < n ? base.load(fromByteOffset: i, as: UInt8.self) : 10
            if next == 44 /* , */ {
                i += 1
                continue
            }
            if next != 10 || field != fieldCount { break fast }
            return (i, checkRanges(base, from: start, end: i, count: n, into: values))
        }
        let end: Int
        if let hit = memchr(base + start, 10, n - start) {
            end = base.distance(to: UnsafeRawPointer(hit))
        } else {
            end = n
        }
        let content = LineDecoder.contentEnd(base, from: start, end: end, count: n)
        return (end, decode(UnsafeRawBufferPointer(start: base + start, count: content - start), readable: n - start, into: values))
    }

    /// Where the text of the line `start..<end` ends: before one `\r` that precedes its `\n`
    /// (CRLF line endings), else at `end`. A `\r` without a `\n` after it stays in the line.
    @inline(__always)
    public static func contentEnd(_ base: UnsafeRawPointer, from start: Int, end: Int, count n: Int) -> Int {
        end < n && end > start && base.load(fromByteOffset: end - 1, as: UInt8.self) == 13 ? end - 1 : end
    }

    /// The minimums and the time range of a line whose every field decoded: nil when they hold.
    @inline(__always)
    private func checkRanges(_ base: UnsafeRawPointer, from start: Int, end: Int, count n: Int,
                             into values: UnsafeMutablePointer<Int64>) -> DecodeFailure? {
        for check in minimumChecks where values[check.field] < check.minimum {
            // The first field below its minimum, as `decode` reports it.
            return decode(UnsafeRawBufferPointer(start: base + start, count: end - start), readable: n - start, into: values)
        }
        let t = values[timeIndex]
        if t > LineDecoder.timeLimit || t < -LineDecoder.timeLimit { return .timeOutOfRange }
        return nil
    }

    /// The common line, decoded with no dependency from one field to the next: the line ends
    /// within 32 bytes, every field is 1 to 16 digits (no sign), separated by `,` and ended by
    /// `\n`. The non-digit bytes of the 32 bytes are found at once (four independent 8-byte
    /// words), which places every field; each field's value is then read from the 8 or 16 bytes
    /// that end at its separator. Returns the line end (its `\n`), or nil to leave the line to the
    /// general path (which decides every other case, valid or not).
    @inline(__always)
    func decodePlainLine(_ base: UnsafeRawPointer, from start: Int, count n: Int,
                         into values: UnsafeMutablePointer<Int64>) -> Int? {
        // Reads reach 8 bytes before the line (a field's value ends at its separator and is read
        // as the 8 or 16 bytes before it) and 32 bytes after its start.
        guard start >= 8, start + 32 <= n else { return nil }
        let p = base + start
        var separators = UInt32(truncatingIfNeeded: LineDecoder.gatherHighBits(LineDecoder.nonDigitMask(p.loadWord(0))))
            | UInt32(truncatingIfNeeded: LineDecoder.gatherHighBits(LineDecoder.nonDigitMask(p.loadWord(8)))) << 8
            | UInt32(truncatingIfNeeded: LineDecoder.gatherHighBits(LineDecoder.nonDigitMask(p.loadWord(16)))) << 16
            | UInt32(truncatingIfNeeded: LineDecoder.gatherHighBits(LineDecoder.nonDigitMask(p.loadWord(24)))) << 24
        var fieldStart = 0
        for field in 0..<fieldCount {
            if separators == 0 { return nil }
            let at = separators.trailingZeroBitCount
            separators &= separators &- 1
            let expected: UInt8 = field == fieldCount - 1 ? 10 : 44
            let length = at - fieldStart
            guard p.load(fromByteOffset: at, as: UInt8.self) == expected, length >= 1, length <= 16 else { return nil }
            values[field] = Int64(LineDecoder.digitsValue(endingAt: p + at, length: length))
            fieldStart = at + 1
        }
        return start + fieldStart - 1
    }

    /// The value of the `length` (1...16) digits that end just before `end` (8 or 16 bytes before
    /// it must be readable). The bytes in front of the digits are cleared: as zero digits they
    /// add nothing.
    @inline(__always)
    static func digitsValue(endingAt end: UnsafeRawPointer, length: Int) -> UInt64 {
        if length <= 8 {
            return eightDigitsValue(end.loadWord(-8) & (~0 << UInt64(64 - 8 * length)))
        }
        let high = eightDigitsValue(end.loadWord(-16) & (~0 << UInt64(128 - 8 * length)))
        return high &* 100_000_000 &+ eightDigitsValue(end.loadWord(-8))
    }

    /// Bit k of the result is bit 8k+7 of `mask` (whose other bits are 0).
    @inline(__always)
    static func gatherHighBits(_ mask: UInt64) -> UInt64 {
        ((mask >> 7) &* 0x0102_0408_1020_4080) >> 56
    }

    /// The run of ASCII digits at `base[from...]`, as a value (wrapping past 19 digits: callers
    /// check the length) and the index after it. Eight bytes at a time while `readable` allows (a
    /// run never crosses a line end: its `\n`, or the end of data, stops it), then byte by byte up
    /// to `end`.
    @inline(__always)
    static func scanDigits(_ base: UnsafeRawPointer, from start: Int, readable: Int, end: Int) -> (value: UInt64, next: Int) {
        var i = start
        var magnitude: UInt64 = 0
        while i + 8 <= readable {
            let chunk = UInt64(littleEndian: (base + i).loadUnaligned(as: UInt64.self))
            let nonDigits = LineDecoder.nonDigitMask(chunk)
            if nonDigits == 0 {
                magnitude = magnitude &* 100_000_000 &+ LineDecoder.eightDigitsValue(chunk)
                i += 8
                continue
            }
            let k = nonDigits.trailingZeroBitCount >> 3
            if k > 0 {
                magnitude = magnitude &* LineDecoder.powersOf10[k] &+ LineDecoder.eightDigitsValue(chunk &<< UInt64(64 - 8 * k))
                i += k
            }
            return (magnitude, i)
        }
        while i < end {
            let d = base.load(fromByteOffset: i, as: UInt8.self) &- 48
            if d > 9 { break }
            magnitude = magnitude &* 10 &+ UInt64(d)
            i += 1
        }
        return (magnitude, i)
    }

    static let powersOf10: [UInt64] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000]

    /// The high bit of every byte of `chunk` that is not '0'...'9' (no carries between bytes).
    @inline(__always)
    static func nonDigitMask(_ chunk: UInt64) -> UInt64 {
        let t = chunk ^ 0x3030_3030_3030_3030  // digits become 0...9
        return (((t & 0x7F7F_7F7F_7F7F_7F7F) &+ 0x7676_7676_7676_7676) | t) & 0x8080_8080_8080_8080
    }

    /// The value of eight ASCII digits, the first in the lowest byte.
    @inline(__always)
    static func eightDigitsValue(_ chunk: UInt64) -> UInt64 {
        var v = chunk & 0x0F0F_0F0F_0F0F_0F0F
        v = (v &* 2561) >> 8
        v = ((v & 0x00FF_00FF_00FF_00FF) &* 6_553_601) >> 16
        return ((v & 0x0000_FFFF_0000_FFFF) &* 42_949_672_960_001) >> 32
    }

    /// Whether the digits in `line[from..<to]` exceed UInt64.
    private static func overflows(_ line: UnsafeRawBufferPointer, from: Int, to: Int) -> Bool {
        var value: UInt64 = 0
        for i in from..<to {
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(UInt64(line[i] &- 48))
            if o1 || o2 { return true }
            value = a
        }
        return false
    }

    private func countFields(_ line: UnsafeRawBufferPointer) -> Int {
        var count = 1
        for byte in line where byte == 44 { count += 1 }
        return count
    }
}

extension UnsafeRawPointer {
    /// Eight bytes at `offset`, the first in the lowest byte.
    @inline(__always)
    func loadWord(_ offset: Int) -> UInt64 {
        UInt64(littleEndian: (self + offset).loadUnaligned(as: UInt64.self))
    }
}
