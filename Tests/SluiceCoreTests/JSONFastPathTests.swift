import Testing
@testable import SluiceCore

/// The JSON fast path (JSONFieldReader) may give up on anything, but what it accepts must be
/// exactly what the tree-building path accepts, with the same values.
@Suite struct JSONFastPathTests {
    static let schema = Schema(fields: [
        Field(name: "id", type: .string),
        Field(name: "customer", type: .string, path: ["customer", "id"]),
        Field(name: "tier", type: .string, nullable: true, path: ["customer", "tier"]),
        Field(name: "amount", type: .decimal, minimum: 1, scale: 2),
        Field(name: "n", type: .int64, nullable: true),
        Field(name: "u", type: .uint64, nullable: true),
        Field(name: "f", type: .float64, nullable: true),
        Field(name: "ok", type: .bool, nullable: true),
        Field(name: "ts", type: .timestamp),
    ])

    static let pieces: [String: [String]] = [
        "id": ["\"o-1\"", "\"\"", "17", "null", "{\"x\":1}", "\"a b\"", "[1]"],
        "customer": ["{\"id\":\"c1\",\"tier\":\"gold\"}", "{\"tier\":null,\"id\":\"c2\"}", "{\"id\":\"c3\"}", "null", "{}",
                     "{\"id\":\"c4\",\"id\":\"c5\"}", "\"flat\"", "{\"id\":5}", "{ \"id\" : \"c6\" , \"tier\" : [ ] }",
                     "{\"id\":\"c7\",\"deep\":{\"a\":{\"b\":[1,2,{\"c\":null}]}}}"],
        "amount": ["12.34", "\"12.34\"", "12.345", "\"12.3\"", "1e2", "0.001", "0.01", "-5", "01.5", "12.", "\"1e2\"", "99999999999999999.99"],
        "n": ["5", "-0", "1.0", "9223372036854775807", "9223372036854775808", "\"5\"", "null", "1e3", "-"],
        "u": ["18446744073709551615", "0", "-1", "null", "18446744073709551616"],
        "f": ["1.5", "-0.0", "1e999", "2E-3", "true", "null", ".5"],
        "ok": ["true", "false", "null", "\"true\"", "1", "tru"],
        "ts": ["\"2026-12-01T10:00:00Z\"", "\"2026-12-01T10:00:00.5+01:00\"", "1767225600000", "\"2026-13-01T00:00:00Z\"",
               "-5", "1.5", "\"2026-12-01 10:00:00Z\"", "null"],
    ]

    @Test func fastPathAgreesWithTheTreePath() {
        let decoder = RecordDecoder(schema: Self.schema, format: .json)
        var rng = SplitMix64(seed: 2026)
        var fast = 0, slowOnly = 0
        for _ in 0..<20_000 {
            var members: [String] = []
            // Mostly the first (valid) option of each field, so that whole records often decode.
            let wild = rng.next() % 2 == 0
            for (name, options) in Self.pieces.sorted(by: { $0.key < $1.key }) where !wild || rng.next() % 8 != 0 {
                let pick = wild && rng.next() % 3 == 0 ? Int(rng.next() % UInt64(options.count)) : Int(rng.next() % 2)
                members.append("\"\(name)\":" + options[pick])
            }
            if rng.next() % 6 == 0 { members.append("\"extra\":{\"k\":[true,false,null,\"s\",-1.5e+3]}") }
            if rng.next() % 15 == 0 { members.append("\"n\":1") }
            members.shuffle(using: &rng)
            var text = "{" + members.joined(separator: rng.next() % 2 == 0 ? "," : " ,\t") + "}"
            switch rng.next() % 20 {
            case 0: text += " x"
            case 1: text.removeLast()
            case 2: text = " " + text + " \r"
            case 3: text = "[" + text + "]"
            default: break
            }
            let bytes = Array(text.utf8)
            bytes.withUnsafeBytes { raw in
                let tree = decoder.decodeJSONTree(raw)
                guard let values = decoder.fastJSON(raw) else {
                    slowOnly += 1
                    return
                }
                fast += 1
                #expect(tree == .success(values), "\(text)")
            }
        }
        // Both paths must be exercised.
        #expect(fast > 500 && slowOnly > 500, "fast \(fast), slow only \(slowOnly)")
    }

    @Test func unicodeAndEscapesTakeTheTreePath() {
        let decoder = RecordDecoder(schema: Schema(fields: [Field(name: "s", type: .string), Field(name: "t", type: .int64)]), format: .json)
        for text in [#"{"s":"é","t":1}"#, #"{"s":"a\"b","t":1}"#, #"{"s":"\u00e9","t":1}"#] {
            Array(text.utf8).withUnsafeBytes { raw in
                #expect(decoder.fastJSON(raw) == nil)
                #expect(decoder.decode(raw) == decoder.decodeJSONTree(raw))
                #expect((try? decoder.decode(raw).get()) != nil)
            }
        }
    }
}
