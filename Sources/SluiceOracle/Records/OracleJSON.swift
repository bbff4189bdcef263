// A small JSON reader (RFC 8259) for the records oracle, written apart from the engine's
// JSONParser. Foundation's JSONSerialization is not used because it turns numbers into Double
// (a decimal or a large int64 would lose digits) and silently keeps one of two duplicated keys;
// the contract needs numbers as written and duplicated keys refused.

/// A parsed JSON value; numbers keep their text, so that integers and decimals read exactly.
indirect enum OracleJSON {
    case null
    case bool(Bool)
    /// The number exactly as written (RFC 8259 syntax already checked).
    case number(String)
    case string(String)
    case array([OracleJSON])
    /// Members in order, keys as UTF-8 bytes (compared as bytes); unique (a duplicate is a parse error).
    case object([(key: [UInt8], value: OracleJSON)])

    /// The member named `key` (keys compared by UTF-8 bytes), if this is an object that has it.
    func member(_ key: String) -> OracleJSON? {
        member(bytes: Array(key.utf8))
    }

    func member(bytes: [UInt8]) -> OracleJSON? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.key == bytes }?.value
    }

    /// Short text for reasons.
    var shown: String {
        switch self {
        case .null: "null"
        case .bool(let b): b ? "true" : "false"
        case .number(let n): n
        case .string(let s): "\"\(s)\""
        case .array: "an array"
        case .object: "an object"
        }
    }

    /// Parses one whole JSON text (whitespace around it allowed); the reason on failure.
    static func parse(_ bytes: [UInt8]) -> Result<OracleJSON, OracleJSONError> {
        var reader = Reader(bytes: bytes)
        do throws(OracleJSONError) {
            reader.skipWhitespace()
            let value = try reader.value(depth: 0)
            reader.skipWhitespace()
            guard reader.at == bytes.count else { throw OracleJSONError("unexpected text after the JSON value at byte \(reader.at)") }
            return .success(value)
        } catch {
            return .failure(error)
        }
    }

    /// Containers nested deeper than this are refused (docs/DESIGN.md: nesting bounded at 64).
    static let maxDepth = 64

    private struct Reader {
        let bytes: [UInt8]
        var at = 0

        mutating func skipWhitespace() {
            while at < bytes.count, bytes[at] == 0x20 || bytes[at] == 0x09 || bytes[at] == 0x0A || bytes[at] == 0x0D { at += 1 }
        }

        func fail(_ what: String) -> OracleJSONError { OracleJSONError("\(what) at byte \(at)") }

        mutating func literal(_ word: String) throws(OracleJSONError) {
            for b in word.utf8 {
                guard at < bytes.count, bytes[at] == b else { throw fail("invalid literal") }
                at += 1
            }
        }

        mutating func value(depth: Int) throws(OracleJSONError) -> OracleJSON {
            guard at < bytes.count else { throw fail("unexpected end of input") }
            switch bytes[at] {
            case UInt8(ascii: "{"):
                guard depth < OracleJSON.maxDepth else { throw fail("nested deeper than \(OracleJSON.maxDepth)") }
                at += 1
                var members: [(key: [UInt8], value: OracleJSON)] = []
                skipWhitespace()
                if at < bytes.count, bytes[at] == UInt8(ascii: "}") { at += 1; return .object(members) }
                while true {
                    skipWhitespace()
                    guard at < bytes.count, bytes[at] == UInt8(ascii: "\"") else { throw fail("expected a member name") }
                    let key = Array(try string().utf8)
                    // The contract: a key twice in one object makes the record a dead letter.
                    if members.contains(where: { $0.key == key }) {
                        throw OracleJSONError("duplicated key \"\(String(decoding: key, as: UTF8.self))\"")
                    }
                    skipWhitespace()
                    guard at < bytes.count, bytes[at] == UInt8(ascii: ":") else { throw fail("expected ':'") }
                    at += 1
                    skipWhitespace()
                    members.append((key, try value(depth: depth + 1)))
                    skipWhitespace()
                    guard at < bytes.count else { throw fail("unexpected end of input") }
                    if bytes[at] == UInt8(ascii: ",") { at += 1; continue }
                    if bytes[at] == UInt8(ascii: "}") { at += 1; return .object(members) }
                    throw fail("expected ',' or '}'")
                }
            case UInt8(ascii: "["):
                guard depth < OracleJSON.maxDepth else { throw fail("nested deeper than \(OracleJSON.maxDepth)") }
                at += 1
                var elements: [OracleJSON] = []
                skipWhitespace()
                if at < bytes.count, bytes[at] == UInt8(ascii: "]") { at += 1; return .array(elements) }
                while true {
                    skipWhitespace()
                    elements.append(try value(depth: depth + 1))
                    skipWhitespace()
                    guard at < bytes.count else { throw fail("unexpected end of input") }
                    if bytes[at] == UInt8(ascii: ",") { at += 1; continue }
                    if bytes[at] == UInt8(ascii: "]") { at += 1; return .array(elements) }
                    throw fail("expected ',' or ']'")
                }
            case UInt8(ascii: "\""):
                return .string(try string())
            case UInt8(ascii: "t"):
                try literal("true"); return .bool(true)
            case UInt8(ascii: "f"):
                try literal("false"); return .bool(false)
            case UInt8(ascii: "n"):
                try literal("null"); return .null
            default:
                return .number(try number())
            }
        }

        func isDigit(_ i: Int) -> Bool { i < bytes.count && bytes[i] >= 0x30 && bytes[i] <= 0x39 }

        /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
        mutating func number() throws(OracleJSONError) -> String {
            let start = at
            if at < bytes.count, bytes[at] == UInt8(ascii: "-") { at += 1 }
            guard isDigit(at) else { throw fail("invalid value") }
            if bytes[at] == UInt8(ascii: "0") {
                at += 1
                if isDigit(at) { throw fail("leading zero in a number") }
            } else {
                while isDigit(at) { at += 1 }
            }
            if at < bytes.count, bytes[at] == UInt8(ascii: ".") {
                at += 1
                guard isDigit(at) else { throw fail("expected a digit after '.'") }
                while isDigit(at) { at += 1 }
            }
            if at < bytes.count, bytes[at] == UInt8(ascii: "e") || bytes[at] == UInt8(ascii: "E") {
                at += 1
                if at < bytes.count, bytes[at] == UInt8(ascii: "+") || bytes[at] == UInt8(ascii: "-") { at += 1 }
                guard isDigit(at) else { throw fail("expected a digit in the exponent") }
                while isDigit(at) { at += 1 }
            }
            return String(decoding: bytes[start..<at], as: UTF8.self)
        }

        func hex4(_ i: Int) -> UInt32? {
            guard i + 4 <= bytes.count else { return nil }
            var v: UInt32 = 0
            for k in i..<(i + 4) {
                let c = bytes[k]
                let d: UInt32
                switch c {
                case 0x30...0x39: d = UInt32(c - 0x30)
                case 0x41...0x46: d = UInt32(c - 0x41 + 10)
                case 0x61...0x66: d = UInt32(c - 0x61 + 10)
                default: return nil
                }
                v = v * 16 + d
            }
            return v
        }

        /// A string starting at the opening quote. Raw bytes must be valid UTF-8 and not control
        /// characters; `\uD800`-style lone surrogates are refused (no String can hold them).
        mutating func string() throws(OracleJSONError) -> String {
            at += 1  // the opening quote
            var out: [UInt8] = []
            while true {
                guard at < bytes.count else { throw fail("unterminated string") }
                let c = bytes[at]
                if c == UInt8(ascii: "\"") { at += 1; break }
                if c < 0x20 { throw fail("control character in a string") }
                if c != UInt8(ascii: "\\") { out.append(c); at += 1; continue }
                at += 1
                guard at < bytes.count else { throw fail("unterminated string") }
                let e = bytes[at]
                at += 1
                switch e {
                case UInt8(ascii: "\""): out.append(0x22)
                case UInt8(ascii: "\\"): out.append(0x5C)
                case UInt8(ascii: "/"): out.append(0x2F)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    guard let unit = hex4(at) else { throw fail("invalid \\u escape") }
                    at += 4
                    var scalarValue = unit
                    if (0xD800...0xDBFF).contains(unit) {
                        guard at + 1 < bytes.count, bytes[at] == UInt8(ascii: "\\"), bytes[at + 1] == UInt8(ascii: "u"),
                              let low = hex4(at + 2), (0xDC00...0xDFFF).contains(low) else { throw fail("lone surrogate") }
                        at += 6
                        scalarValue = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(unit) {
                        throw fail("lone surrogate")
                    }
                    guard let scalar = Unicode.Scalar(scalarValue) else { throw fail("invalid \\u escape") }
                    out.append(contentsOf: String(Character(scalar)).utf8)
                default:
                    throw fail("invalid escape")
                }
            }
            guard let text = String(validating: out, as: UTF8.self) else { throw fail("invalid UTF-8 in a string") }
            return text
        }
    }
}

struct OracleJSONError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
