// Typed values of records (JSON and CSV events, row images): one enum for the decoder, the
// expression evaluator, dedupe, the windows' aggregates and the sinks. Pure: no Foundation.

/// The type of a schema field or of an expression.
public enum ValueType: Sendable, Hashable, CustomStringConvertible {
    case string
    case int64
    case uint64
    case float64
    case bool
    /// Milliseconds since the Unix epoch.
    case timestamp
    /// An exact decimal kept as a scaled 64-bit integer: `decimal(scale: 2)` holds 12.34 as 1234.
    case decimal(scale: Int)

    /// The largest decimal scale: 10^18 is the largest power of ten an Int64 holds.
    public static let maxScale = 18

    /// `decimal` without its scale, as in schemas and messages (`'amount' is decimal`).
    public var description: String {
        switch self {
        case .string: "string"
        case .int64: "int64"
        case .uint64: "uint64"
        case .float64: "float64"
        case .bool: "bool"
        case .timestamp: "timestamp"
        case .decimal: "decimal"
        }
    }

    /// int64, uint64, float64 or decimal: takes part in arithmetic.
    public var isNumeric: Bool {
        switch self {
        case .int64, .uint64, .float64, .decimal: true
        default: false
        }
    }
}

/// One value of a record. `null` is a missing or null field of a nullable type. A decimal carries
/// its scale, so that arithmetic across scales is exact; values of one field share one scale.
public enum Value: Sendable, Hashable, CustomStringConvertible {
    case null
    case string(String)
    case int64(Int64)
    case uint64(UInt64)
    /// Never NaN or infinite: the decoder dead-letters those, the evaluator refuses to make them.
    case float64(Double)
    case bool(Bool)
    /// Milliseconds since the Unix epoch.
    case timestamp(Int64)
    /// `unscaled / 10^scale`.
    case decimal(Int64, scale: Int)

    public var isNull: Bool { if case .null = self { true } else { false } }

    /// Strings are equal when their UTF-8 bytes are (Swift's own `==` would also equate canonically
    /// equivalent strings, which the contract forbids: no Unicode normalization anywhere).
    public static func == (a: Value, b: Value) -> Bool {
        switch (a, b) {
        case (.null, .null): true
        case let (.string(x), .string(y)): Value.sameBytes(x, y)
        case let (.int64(x), .int64(y)): x == y
        case let (.uint64(x), .uint64(y)): x == y
        case let (.float64(x), .float64(y)): x == y
        case let (.bool(x), .bool(y)): x == y
        case let (.timestamp(x), .timestamp(y)): x == y
        case let (.decimal(x, s), .decimal(y, t)): x == y && s == t
        default: false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .null: hasher.combine(0 as UInt8)
        case .string(let s):
            hasher.combine(1 as UInt8)
            var s = s
            s.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
            hasher.combine(0xFF as UInt8)  // no UTF-8 byte is 0xFF: ends the string unambiguously
        case .int64(let v): hasher.combine(2 as UInt8); hasher.combine(v)
        case .uint64(let v): hasher.combine(3 as UInt8); hasher.combine(v)
        case .float64(let v): hasher.combine(4 as UInt8); hasher.combine(v)
        case .bool(let v): hasher.combine(5 as UInt8); hasher.combine(v)
        case .timestamp(let v): hasher.combine(6 as UInt8); hasher.combine(v)
        case .decimal(let v, let scale): hasher.combine(7 as UInt8); hasher.combine(v); hasher.combine(scale)
        }
    }

    /// The same UTF-8 bytes (compared in place: `utf8.elementsEqual` walks them one by one).
    @inline(__always)
    static func sameBytes(_ a: String, _ b: String) -> Bool {
        guard a.utf8.count == b.utf8.count else { return false }
        var a = a, b = b
        return a.withUTF8 { x in
            b.withUTF8 { y in
                guard let p = x.baseAddress, let q = y.baseAddress else { return true }  // both empty
                return memcmp(p, q, x.count) == 0
            }
        }
    }

    /// Byte-wise UTF-8 order of strings, the one string order of Sluice (min, max, comparisons).
    public static func utf8Less(_ a: String, _ b: String) -> Bool {
        a.utf8.lexicographicallyPrecedes(b.utf8)
    }

    /// A short text for messages and tests: strings quoted, decimals in canonical form.
    public var description: String {
        switch self {
        case .null: "null"
        case .string(let s): "'\(s)'"
        case .int64(let v): "\(v)"
        case .uint64(let v): "\(v)"
        case .float64(let v): "\(v)"
        case .bool(let v): "\(v)"
        case .timestamp(let ms): Timestamps.rfc3339(milliseconds: ms)
        case .decimal(let unscaled, let scale): DecimalText.format(unscaled, scale: scale)
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
