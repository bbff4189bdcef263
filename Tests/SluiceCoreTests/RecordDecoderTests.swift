import SluiceCore
import Testing

@Suite struct RecordDecoderTests {
    static let orders = Schema(fields: [
        Field(name: "order_id", type: .string),
        Field(name: "customer", type: .string, path: ["customer", "id"]),
        Field(name: "tier", type: .string, nullable: true, path: ["customer", "tier"]),
        Field(name: "amount", type: .decimal, minimum: 0, scale: 2),
        Field(name: "paid", type: .bool, nullable: true),
        Field(name: "ts", type: .timestamp),
        Field(name: "qty", type: .int64, nullable: true),
        Field(name: "weight", type: .float64, nullable: true),
    ])

    func json(_ line: String, mode: RecordDecoder.TextMode = .standard) -> Result<[Value], RecordFailure> {
        let decoder = RecordDecoder(schema: Self.orders, format: .json, mode: mode)
        return Array(line.utf8).withUnsafeBytes { decoder.decode($0) }
    }

    func reason(_ r: Result<[Value], RecordFailure>) -> String? {
        if case .failure(let f) = r { return f.reason }
        return nil
    }

    @Test func decodesATypedJSONObject() throws {
        let r = json(#"{"order_id":"o-1","customer":{"id":"cust-00042","tier":null},"amount":"12.30","paid":true,"ts":"2026-01-01T00:00:01.5Z","extra":[1,{"a":2}],"weight":1.5e0}"#)
        #expect(try r.get() == [.string("o-1"), .string("cust-00042"), .null, .decimal(1230, scale: 2), .bool(true),
                                .timestamp(1_767_225_601_500), .null, .float64(1.5)])
        let numbers = json(#"{"order_id":"o\u00e9\n","customer":{"id":"c"},"amount":12.3,"ts":1767225600000,"qty":-7}"#)
        #expect(try numbers.get() == [.string("oé\n"), .string("c"), .null, .decimal(1230, scale: 2), .null,
                                      .timestamp(1_767_225_600_000), .int64(-7), .null])
    }

    @Test func deadLettersNameTheFieldAndTheProblem() {
        let base = #""order_id":"o","customer":{"id":"c"},"ts":0"#
        #expect(reason(json("{\(base),\"amount\":\"12.345\"}")) == #"field 'amount': expected decimal with scale 2, found "12.345""#)
        #expect(reason(json("{\(base),\"amount\":12.345}")) == "field 'amount': expected decimal with scale 2, found 12.345")
        #expect(reason(json("{\(base),\"amount\":-1}")) == "field 'amount' must be >= 0.00")
        #expect(reason(json("{\(base)}")) == "field 'amount': missing (the field is not nullable)")
        #expect(reason(json("{\(base),\"amount\":null}")) == "field 'amount': null (the field is not nullable)")
        #expect(reason(json("{\(base),\"amount\":1,\"qty\":1.0}")) == "field 'qty': expected int64 (an integer), found 1.0")
        #expect(reason(json("{\(base),\"amount\":1,\"qty\":\"1\"}")) == #"field 'qty': expected int64 (an integer), found "1""#)
        #expect(reason(json("{\(base),\"amount\":1,\"paid\":1}")) == "field 'paid': expected bool (true or false), found 1")
        #expect(reason(json("{\(base),\"amount\":1,\"weight\":1e999}")) == "field 'weight': expected a finite float64, found 1e999")
        #expect(reason(json("{\(base),\"amount\":1,\"amount\":2}"))?.contains("duplicate key \"amount\"") == true)
        #expect(reason(json("[1,2]")) == "not a JSON object: [1,2]")
        #expect(reason(json("{\"order_id\":\"o\",")) != nil)
        #expect(reason(json(#"{"order_id":"o","customer":"c","ts":0,"amount":1}"#)) == #"field 'customer': 'customer' is "c", not an object"#)
        #expect(reason(json(#"{"order_id":"o","customer":{"id":"c"},"amount":1,"ts":"2026-01-01"}"#))?.hasPrefix("field 'ts': expected timestamp") == true)
    }

    @Test func postgresTextMode() throws {
        let line = #"{"order_id":"o","customer":{"id":"c"},"amount":"12.3000","paid":"t","ts":"2026-01-01 00:00:00.25+00","qty":"42","weight":"2.5"}"#
        #expect(try json(line, mode: .postgres).get() == [.string("o"), .string("c"), .null, .decimal(1230, scale: 2), .bool(true),
                                                          .timestamp(1_767_225_600_250), .int64(42), .float64(2.5)])
        #expect(reason(json(#"{"order_id":"o","customer":{"id":"c"},"amount":"1","ts":0,"weight":"NaN"}"#, mode: .postgres))
            == #"field 'weight': expected a finite float64, found "NaN""#)
    }

    @Test func csvWithQuotingAndNulls() throws {
        let schema = Schema(fields: [Field(name: "id", type: .string), Field(name: "note", type: .string, nullable: true),
                                     Field(name: "n", type: .int64, nullable: true)])
        let decoder = RecordDecoder(schema: schema, format: .csv(header: false, delimiter: UInt8(ascii: ",")))
        func decode(_ s: String) -> Result<[Value], RecordFailure> { Array(s.utf8).withUnsafeBytes { decoder.decode($0) } }
        #expect(try decode(#""a,b","say ""hi""",7"#).get() == [.string("a,b"), .string(#"say "hi""#), .int64(7)])
        #expect(try decode("x,,\r").get() == [.string("x"), .null, .null])
        #expect(try decode(#"x,"","#).get() == [.string("x"), .string(""), .null])
        #expect(try decode("\"multi\nline\",y,1").get() == [.string("multi\nline"), .string("y"), .int64(1)])
        #expect(reason(decode("x,y")) == "expected 3 fields, got 2")
        #expect(reason(decode(#"x,a"b,1"#)) == "CSV field 2: a quote inside an unquoted field (quote the whole field and double the quote)")
        #expect(reason(decode(",y,1")) == "field 'id': missing (the field is not nullable)")
    }

    @Test func csvHeaderMapsByName() throws {
        let schema = Schema(fields: [Field(name: "a", type: .int64), Field(name: "b", type: .string, nullable: true)])
        let decoder = RecordDecoder(schema: schema, format: .csv(header: true, delimiter: UInt8(ascii: ";")))
        let columns = try Array("b;x;a".utf8).withUnsafeBytes { decoder.columns(ofHeader: $0) }.get()
        #expect(columns == [2, 0])
        let r = Array("hello;ignored;5".utf8).withUnsafeBytes { decoder.decode($0, columns: columns) }
        #expect(try r.get() == [.int64(5), .string("hello")])
    }

    @Test func csvRecordEndsOutsideQuotes() {
        let text = Array("a,\"x\ny\",b\nnext\n\"open".utf8)
        text.withUnsafeBytes { raw in
            let base = raw.baseAddress!
            let first = CSVRecords.recordEnd(base, from: 0, count: raw.count)
            #expect(first.complete && first.end == 9)
            let second = CSVRecords.recordEnd(base, from: 10, count: raw.count)
            #expect(second.complete && second.end == 14)
            let third = CSVRecords.recordEnd(base, from: 15, count: raw.count)
            #expect(!third.complete)
        }
    }
}
