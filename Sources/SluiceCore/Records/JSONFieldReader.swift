// The JSON fast path of the typed decoder: reads the schema's fields straight from the bytes of
// an object, without building a tree, strings or member lists for what the job does not read.
// It takes the common case only (ASCII text, no backslash escape) and gives up (nil) on anything
// else, valid or not: the tree-building `JSONParser` path then decodes the record or says exactly
// why it is a dead letter. So the fast path may never accept what the slow one refuses, and when
// it accepts it must produce the same values (RecordDecoderTests compare the two).

/// The schema's JSON paths as a trie: node 0 is the record's object; each node lists the member
/// names it wants and, for a leaf, the fields it holds.
struct JSONPathTrie: Sendable {
    struct Node: Sendable {
        var children: [(name: [UInt8], node: Int)] = []
        var fields: [Int] = []
    }

    private(set) var nodes = [Node()]

    init(fields: [Field]) {
        for (f, field) in fields.enumerated() {
            var node = 0
            for step in field.jsonPath {
                let name = Array(step.utf8)
                if let next = nodes[node].children.first(where: { $0.name == name })?.node {
                    node = next
                } else {
                    nodes.append(Node())
                    nodes[node].children.append((name, nodes.count - 1))
                    node = nodes.count - 1
                }
            }
            nodes[node].fields.append(f)
        }
    }
}

/// One field's value as found: a byte range of the record and what it is.
struct JSONCapture {
    enum Kind { case string, number, trueLiteral, falseLiteral, null, other }
    var kind: Kind
    var start: Int
    var end: Int
}

struct JSONFieldReader {
    private let base: UnsafePointer<UInt8>
    private let count: Int
    private let trie: JSONPathTrie
    private var i = 0
    /// Per field, what was found (nil: absent).
    private(set) var captures: [JSONCapture?]
    /// The keys of the objects being read, innermost last (one allocation per record, not per object).
    private var keys: [(start: Int, end: Int)] = []

    /// Reads `record`; nil when it is not a plain valid object of ASCII without escapes, or a
    /// wanted path crosses something other than an object.
    static func read(_ record: UnsafeRawBufferPointer, trie: JSONPathTrie, fieldCount: Int) -> [JSONCapture?]? {
        guard let base = record.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return nil }
        var reader = JSONFieldReader(base: base, count: record.count, trie: trie, captures: Array(repeating: nil, count: fieldCount))
        reader.skipSpace()
        guard reader.i < reader.count, base[reader.i] == UInt8(ascii: "{"), reader.object(node: 0, depth: 0) else { return nil }
        reader.skipSpace()
        guard reader.i == reader.count else { return nil }
        return reader.captures
    }

    private init(base: UnsafePointer<UInt8>, count: Int, trie: JSONPathTrie, captures: [JSONCapture?]) {
        self.base = base
        self.count = count
        self.trie = trie
        self.captures = captures
    }

    private mutating func skipSpace() {
        while i < count {
            let c = base[i]
            guard c == 32 || c == 9 || c == 10 || c == 13 else { return }
            i += 1
        }
    }

    /// An object at `i` whose members are matched against trie node `node` (-1: none wanted).
    private mutating func object(node: Int, depth: Int) -> Bool {
        guard depth < JSONParser.maxDepth else { return false }
        i += 1  // {
        let firstKey = keys.count
        defer { keys.removeSubrange(firstKey...) }
        skipSpace()
        if i < count, base[i] == UInt8(ascii: "}") { i += 1; return true }
        while true {
            skipSpace()
            guard i < count, base[i] == UInt8(ascii: "\"") else { return false }
            guard let key = string() else { return false }
            // A key twice in one object is a dead letter: the slow path names it.
            for k in keys[firstKey...] where k.end - k.start == key.end - key.start && memcmp(base + k.start, base + key.start, key.end - key.start) == 0 {
                return false
            }
            keys.append(key)
            skipSpace()
            guard i < count, base[i] == UInt8(ascii: ":") else { return false }
            i += 1
            skipSpace()
            var child = -1
            if node >= 0 {
                for c in trie.nodes[node].children where c.name.elementsEqual(UnsafeBufferPointer(start: base + key.start, count: key.end - key.start)) {
                    child = c.node
                    break
                }
            }
            guard value(node: child, depth: depth + 1) else { return false }
            skipSpace()
            guard i < count else { return false }
            if base[i] == UInt8(ascii: ",") { i += 1; continue }
            if base[i] == UInt8(ascii: "}") { i += 1; return true }
            return false
        }
    }

    /// A value at `i`, captured for the fields of trie node `node` (-1: skipped, but validated).
    private mutating func value(node: Int, depth: Int) -> Bool {
        guard depth < JSONParser.maxDepth, i < count else { return false }
        let start = i
        let kind: JSONCapture.Kind
        switch base[i] {
        case UInt8(ascii: "{"):
            // A wanted object is walked for its children; a field that stops here is not a
            // scalar (the slow path says so).
            if node >= 0, !trie.nodes[node].fields.isEmpty { return false }
            return object(node: node >= 0 && !trie.nodes[node].children.isEmpty ? node : -1, depth: depth)
        case UInt8(ascii: "["):
            if node >= 0 { return false }
            return array(depth: depth)
        case UInt8(ascii: "\""):
            guard let s = string() else { return false }
            if node >= 0 { return capture(node, JSONCapture(kind: .string, start: s.start, end: s.end)) }
            return true
        case UInt8(ascii: "t"): guard literal("true") else { return false }; kind = .trueLiteral
        case UInt8(ascii: "f"): guard literal("false") else { return false }; kind = .falseLiteral
        case UInt8(ascii: "n"): guard literal("null") else { return false }; kind = .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): guard number() else { return false }; kind = .number
        default: return false
        }
        if node >= 0 { return capture(node, JSONCapture(kind: kind, start: start, end: i)) }
        return true
    }

    /// Records a scalar for the fields of `node`. A path that goes on below a scalar is the slow
    /// path's business (null there means missing, anything else an error); so is a node both
    /// holding fields and leading further.
    private mutating func capture(_ node: Int, _ found: JSONCapture) -> Bool {
        let n = trie.nodes[node]
        if !n.children.isEmpty { return false }
        for f in n.fields { captures[f] = found }
        return true
    }

    private mutating func array(depth: Int) -> Bool {
        i += 1  // [
        skipSpace()
        if i < count, base[i] == UInt8(ascii: "]") { i += 1; return true }
        while true {
            skipSpace()
            guard value(node: -1, depth: depth + 1) else { return false }
            skipSpace()
            guard i < count else { return false }
            if base[i] == UInt8(ascii: ",") { i += 1; continue }
            if base[i] == UInt8(ascii: "]") { i += 1; return true }
            return false
        }
    }

    /// A string of ASCII without escapes; returns its content's range. Anything else (a backslash,
    /// a byte of a multi-byte character, a control character) gives up: the slow path decides.
    /// Outside strings the grammar admits no such byte, so no record with one passes here.
    private mutating func string() -> (start: Int, end: Int)? {
        i += 1
        let start = i
        while i < count, base[i] != UInt8(ascii: "\"") {
            guard base[i] >= 0x20, base[i] < 0x80, base[i] != 0x5C else { return nil }
            i += 1
        }
        guard i < count else { return nil }
        i += 1
        return (start, i - 1)
    }

    private mutating func literal(_ word: StaticString) -> Bool {
        let n = word.utf8CodeUnitCount
        guard i + n <= count, memcmp(base + i, word.utf8Start, n) == 0 else { return false }
        i += n
        return true
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, as `JSONParser` takes it.
    private mutating func number() -> Bool {
        if base[i] == UInt8(ascii: "-") { i += 1 }
        let intStart = i
        let intDigits = digits()
        guard intDigits > 0, !(intDigits > 1 && base[intStart] == 48) else { return false }
        if i < count, base[i] == UInt8(ascii: ".") {
            i += 1
            guard digits() > 0 else { return false }
        }
        if i < count, base[i] == UInt8(ascii: "e") || base[i] == UInt8(ascii: "E") {
            i += 1
            if i < count, base[i] == UInt8(ascii: "+") || base[i] == UInt8(ascii: "-") { i += 1 }
            guard digits() > 0 else { return false }
        }
        return true
    }

    private mutating func digits() -> Int {
        let s = i
        while i < count, base[i] >= 48, base[i] <= 57 { i += 1 }
        return i - s
    }
}

extension RecordDecoder {
    /// Both paths over one JSON record, for the fuzz target that checks they agree: the fast
    /// path's values (nil: it gave up) and the tree path's result.
    public func decodeJSONBothWays(_ record: UnsafeRawBufferPointer) -> (fast: [Value]?, tree: Result<[Value], RecordFailure>) {
        (fastJSON(record), decodeJSONTree(record))
    }

    /// The fast path (see the file's comment): the values, or nil to take the slow path.
    func fastJSON(_ record: UnsafeRawBufferPointer) -> [Value]? {
        guard let captures = JSONFieldReader.read(record, trie: jsonPaths, fieldCount: fields.count),
              let base = record.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return nil }
        var values: [Value] = []
        values.reserveCapacity(fields.count)
        for (f, field) in fields.enumerated() {
            let value: Value
            guard let found = captures[f], found.kind != .null else {
                guard field.nullable else { return nil }
                values.append(.null)
                continue
            }
            let bytes = UnsafeBufferPointer(start: base + found.start, count: found.end - found.start)
            func number(integral: Bool) -> [UInt8]? {
                guard found.kind == .number else { return nil }
                if integral, bytes.contains(where: { $0 == 46 || $0 == 101 || $0 == 69 }) { return nil }
                return Array(bytes)
            }
            switch field.type {
            case .string:
                guard found.kind == .string else { return nil }
                value = .string(String(decoding: bytes, as: UTF8.self))
            case .int64, .uint64:
                guard let digits = number(integral: true), case .success(let v) = decodeText(digits, field: field, found: "") else { return nil }
                value = v
            case .float64:
                guard let digits = number(integral: false), case .success(let v) = decodeText(digits, field: field, found: "") else { return nil }
                value = v
            case .bool:
                switch found.kind {
                case .trueLiteral: value = .bool(true)
                case .falseLiteral: value = .bool(false)
                default: return nil
                }
            case .timestamp:
                if found.kind == .string {
                    guard let ms = Timestamps.parse(bytes) else { return nil }
                    value = .timestamp(ms)
                } else {
                    guard let digits = number(integral: true), case .success(let v) = decodeText(digits, field: field, found: "") else { return nil }
                    value = v
                }
            case .decimal:
                let result: Result<Value, RecordFailure>
                switch found.kind {
                case .number: result = decimal(Array(bytes), field: field, exponent: true, found: "")
                case .string: result = decimal(Array(bytes), field: field, exponent: false, found: "")
                default: return nil
                }
                guard case .success(let v) = result else { return nil }
                value = v
            }
            if bound(value, field) != nil { return nil }
            values.append(value)
        }
        return values
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
