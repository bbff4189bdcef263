import SluiceCore
import SluiceJob
import Testing

@Suite struct RecordSpecTests {
    static let orders = """
        name: orders-revenue
        format: json
        schema:
          - {name: order_id, type: string}
          - {name: customer, type: string, path: customer.id}
          - {name: tier, type: string, path: customer.tier, nullable: true}
          - {name: amount, type: decimal, scale: 2, min: 0.01}
          - {name: status, type: string}
          - {name: ts, type: timestamp}
        key: customer
        time: ts
        filter: "status == 'paid' or status = 'shipped'"
        derive:
          - {name: cents, expr: "amount * 100"}
        dedupe: {field: order_id, within_ms: 600000}
        window: {kind: tumbling, size_ms: 60000}
        aggregates: [count, {sum: amount}, {count_distinct: order_id}, {max: amount}, {last: status}, {avg: amount}, {min: ts}]
        table: revenue
        """

    func error(_ yaml: String) -> String? {
        do {
            _ = try JobSpec.parse(yaml: yaml)
            return nil
        } catch {
            return "\(error)"
        }
    }

    func replacing(_ old: String, _ new: String) -> String {
        precondition(Self.orders.contains(old), "test: '\(old)' is not in the job")
        return Self.orders.replacingOccurrences(of: old, with: new)
    }

    @Test func aRecordsJobParses() throws {
        let job = try JobSpec.parse(yaml: Self.orders)
        let p = job.pipeline
        #expect(p.format == .json)
        #expect(p.keyFields == ["customer"])
        #expect(p.partitioner == .murmur2)
        #expect(p.partitionCheck)
        #expect(p.schema.fields[1].path == ["customer", "id"])
        #expect(p.schema.fields[2].nullable)
        #expect(p.schema.fields[3].valueType == .decimal(scale: 2))
        #expect(p.schema.fields[3].minimum == 1)
        #expect(p.filter == "status == 'paid' or status = 'shipped'")
        #expect(p.derive == [DerivedField(name: "cents", expression: "amount * 100")])
        #expect(p.dedupe == DedupeSpec(field: "order_id", withinMs: 600_000))
        #expect(p.outputColumns == ["window_start_ms", "customer", "count", "sum_amount", "count_distinct_order_id", "max_amount",
                                    "last_status", "avg_amount", "min_ts"])
        #expect(!p.isIntegerCSV)
        #expect(p.outputTypes == [.int64, .string, .int64, .decimal(scale: 2), .int64, .decimal(scale: 2), .string,
                                  .decimal(scale: 6), .timestamp])
    }

    @Test func compositeKeysCSVOptionsAndPartitioners() throws {
        let csv = replacing("format: json", "format: csv\ncsv: {header: true, delimiter: \";\"}")
            .replacingOccurrences(of: "key: customer", with: "key: [customer, tier]")
        let p = try JobSpec.parse(yaml: csv).pipeline
        #expect(p.format == .csv(header: true, delimiter: UInt8(ascii: ";")))
        #expect(p.keyFields == ["customer", "tier"])
        #expect(p.outputColumns.prefix(3) == ["window_start_ms", "customer", "tier"])
        #expect(error(replacing("key: customer", "key: customer\npartitioner: modulo"))
            == "job spec: partitioner: modulo needs a single int64 or uint64 key; use murmur2 for the key 'customer'")
        #expect(error(replacing("key: customer", "key: customer\npartition_check: maybe")) == "job spec: partition_check: expected on or off, got 'maybe'")
        #expect(try JobSpec.parse(yaml: replacing("key: customer", "key: customer\npartition_check: off")).pipeline.partitionCheck == false)
        // A single int64 key defaults to modulo, and may be hashed instead.
        let intKey = replacing("key: customer", "key: n").replacingOccurrences(of: "derive:\n", with: "derive:\n  - {name: n, expr: \"length(status)\"}\n")
        #expect(try JobSpec.parse(yaml: intKey).pipeline.partitioner == .modulo)
        #expect(try JobSpec.parse(yaml: intKey.replacingOccurrences(of: "key: n", with: "key: n\npartitioner: murmur2")).pipeline.partitioner == .murmur2)
    }

    @Test func badRecordSpecsNameTheFieldAndTheFix() {
        #expect(error(replacing("filter: \"status == 'paid' or status = 'shipped'\"", "filter: \"price > 5 or amount = 'paid'\""))?
            .hasPrefix("job spec: filter: column 1: unknown field 'price'") == true)
        #expect(error(replacing("filter: \"status == 'paid' or status = 'shipped'\"", "filter: \"cents > 5 or amount = 'paid'\""))
            == "job spec: filter: column 14: 'amount' is decimal, cannot compare with 'paid'")
        #expect(error(replacing("{name: amount, type: decimal, scale: 2, min: 0.01}", "{name: amount, type: decimal}"))
            == "job spec: schema[3].scale: missing; a decimal needs its number of fraction digits, e.g. `scale: 2` for money")
        #expect(error(replacing("scale: 2, min: 0.01", "scale: 19"))?.hasPrefix("job spec: schema[3].scale: expected 0 to 18") == true)
        #expect(error(replacing("scale: 2, min: 0.01", "scale: 2, min: 0.001"))
            == "job spec: schema[3].min: expected a decimal with at most 2 fraction digits, got '0.001'")
        #expect(error(replacing("type: timestamp}", "type: date}"))?.hasPrefix("job spec: schema[5].type: unknown type 'date'") == true)
        #expect(error(replacing("format: json", "format: xml")) == "job spec: format: unknown format 'xml'; expected csv or json")
        #expect(error(replacing("time: ts", "time: status")) == "job spec: time: the time field 'status' must be int64 (ms since the Unix epoch) or timestamp, it is string")
        #expect(error(replacing("{count_distinct: order_id}", "{sum: status}")) == "job spec: aggregates[2].sum: field 'status' is string; sum needs an int64, decimal or float64 field")
        #expect(error(replacing("{name: cents, expr: \"amount * 100\"}", "{name: status, expr: \"1\"}")) == "job spec: derive[0].name: 'status' is already a field; choose another name")
        #expect(error(replacing("dedupe: {field: order_id, within_ms: 600000}", "dedupe: {field: nope, within_ms: 1}"))?.hasPrefix("job spec: dedupe.field: no field 'nope'") == true)
        #expect(error(replacing("filter: \"status == 'paid' or status = 'shipped'\"", "filter: \"amount + 1\""))
            == "job spec: filter: column 1: the expression is decimal; expected bool")
        #expect(error(replacing("format: json", "format: json\ncsv: {header: true}")) == "job spec: csv: CSV options with `format: json`; remove them")
        #expect(error(replacing("{name: ts, type: timestamp}", "{name: ts, type: timestamp, nullable: true}"))?.hasPrefix("job spec: time: the time field 'ts' is nullable") == true)
    }

    @Test func integerJobsKeepTheirFingerprint() throws {
        // The text a store of the bids job is bound to, unchanged by records.
        #expect(Pipeline.bidsTumbling.fingerprint
            == "auction:uint64,bidder:uint64,price:int64>=1,event_time_ms:int64 key=auction time=event_time_ms delay=2000 tumbling(10000) count,sum_price,max_price")
        #expect(Pipeline.bidsTumbling.isIntegerCSV)
        let records = try JobSpec.parse(yaml: Self.orders).pipeline.fingerprint
        #expect(records.contains(" json") && records.contains("dedupe(order_id,600000)") && records.contains("amount:decimal(2)>=1"))
    }
}
