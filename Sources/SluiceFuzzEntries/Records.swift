import SluiceCore
import SluiceJob

// The CSV and JSON record decoders (RecordDecoder, CSVRecords, the JSON fast path and the tree
// parser), alone and inside the records engine that calls them.

extension FuzzTargets {
    /// A schema with a field of every type, nullable and not, nested JSON paths.
    static let recordSchema = Schema(fields: [
        Field(name: "id", type: .string),
        Field(name: "customer", type: .string, path: ["customer", "id"]),
        Field(name: "tier", type: .string, nullable: true, path: ["customer", "tier"]),
        Field(name: "amount", type: .decimal, minimum: 1, scale: 2),
        Field(name: "n", type: .int64, nullable: true),
        Field(name: "u", type: .uint64, nullable: true),
        Field(name: "f", type: .float64, minimumFloat: -1e300, nullable: true),
        Field(name: "ok", type: .bool, nullable: true),
        Field(name: "ts", type: .timestamp),
    ])

    /// A records job over that schema, as a user writes it (so the loader validates it): a derived
    /// field, a filter, dedupe and aggregates of every kind.
    static func recordPipeline(format: RecordFormat, window: WindowSpec) -> Pipeline {
        var yaml = """
            schema:
              - {name: id, type: string}
              - {name: customer, type: string, path: customer.id}
              - {name: tier, type: string, path: customer.tier, nullable: true}
              - {name: amount, type: decimal, scale: 2, min: 0.01}
              - {name: n, type: int64, nullable: true}
              - {name: u, type: uint64, nullable: true}
              - {name: f, type: float64, nullable: true}
              - {name: ok, type: bool, nullable: true}
              - {name: ts, type: timestamp}
            key: customer
            time: ts
            watermark: {max_out_of_orderness_ms: 1000}
            filter: "ok is null or ok"
            derive:
              - {name: cents, expr: "amount * 100 + coalesce(n, 0)"}
            dedupe: {field: id, within_ms: 5000}
            aggregates: [count, {sum: amount}, {avg: amount}, {min: n}, {max: f}, {max: u}, {count_distinct: id}, {last: tier}, {sum: cents}, {min: ts}]

            """
        switch format {
        case .json: yaml += "format: json\n"
        case .csv(let header, let delimiter):
            let d = delimiter == 9 ? "\"\\t\"" : "\"\(Character(Unicode.Scalar(delimiter)))\""
            yaml += "format: csv\ncsv: {header: \(header), delimiter: \(d)}\n"
        }
        switch window {
        case .tumbling(let size): yaml += "window: {kind: tumbling, size_ms: \(size)}\n"
        case .sliding(let size, let slide): yaml += "window: {kind: sliding, size_ms: \(size), slide_ms: \(slide)}\n"
        case .session(let gap): yaml += "window: {kind: session, gap_ms: \(gap)}\n"
        }
        do {
            return try JobSpec.parse(yaml: yaml).pipeline
        } catch {
            preconditionFailure("the fuzz target's own job does not load: \(error)")
        }
    }

    static let windows: [WindowSpec] = [.tumbling(sizeMs: 1_000), .sliding(sizeMs: 3_000, slideMs: 1_000), .session(gapMs: 500)]

    /// Bits 0-1: the delimiter; bit 2: a header.
    static func csvFormat(_ control: Int) -> RecordFormat {
        let delimiters: [UInt8] = [UInt8(ascii: ","), UInt8(ascii: ";"), 9, UInt8(ascii: "|")]
        return .csv(header: control & 4 != 0, delimiter: delimiters[control & 3])
    }

    /// Loaded once (the loader is slow next to one input).
    static let csvPipelines = (0..<8).map { control in windows.map { recordPipeline(format: csvFormat(control), window: $0) } }
    static let jsonPipelines = windows.map { recordPipeline(format: .json, window: $0) }

    /// Byte 0: the delimiter and header; byte 1: the window. The rest: CSV text, one record per
    /// line (quoted fields may span lines).
    public static let csv: Entry = { data in
        var input = FuzzInput(data)
        let control = Int(input.byte() & 7)
        let window = Int(input.byte()) % windows.count
        let text = input.rest()
        let format = csvFormat(control)
        let header = control & 4 != 0

        // The decoder on each record, as the engine splits them.
        let decoder = RecordDecoder(schema: recordSchema, format: format)
        let postgres = RecordDecoder(schema: recordSchema, format: format, mode: .postgres)
        text.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            var start = 0
            var columns: [Int?]?
            while start < raw.count {
                let (end, _) = CSVRecords.recordEnd(base, from: start, count: raw.count)
                precondition(end >= start && end <= raw.count, "recordEnd outside the data")
                let record = UnsafeRawBufferPointer(rebasing: raw[start..<end])
                if header, start == 0 {
                    if case .success(let c) = decoder.columns(ofHeader: record) {
                        precondition(c.count == recordSchema.fields.count, "a header mapping per field")
                        columns = c
                    }
                } else {
                    _ = decoder.decode(record, columns: columns)
                    _ = postgres.decode(record, columns: columns)
                }
                start = end + 1
            }
        }
        runRecords(csvPipelines[control][window], text)
    }

    /// Byte 0: the window. The rest: JSON lines. Where the fast path accepts a record, the tree
    /// path must accept it with the same values.
    public static let json: Entry = { data in
        var input = FuzzInput(data)
        let window = Int(input.byte()) % windows.count
        let text = input.rest()
        let decoder = RecordDecoder(schema: recordSchema, format: .json)
        let postgres = RecordDecoder(schema: recordSchema, format: .json, mode: .postgres)
        for line in text.split(separator: 10, omittingEmptySubsequences: false) {
            Array(line).withUnsafeBytes { record in
                let (fast, tree) = decoder.decodeJSONBothWays(record)
                if let fast {
                    precondition(tree == .success(fast), "the JSON fast path accepted what the tree path decodes differently: \(tree)")
                }
                _ = postgres.decode(record)
                _ = JSONParser.parse(record)
            }
        }
        runRecords(jsonPipelines[window], text)
    }

    /// The records engine over `text`, in two blocks split in the middle, with a snapshot and
    /// restore between them (its own snapshot must restore).
    static func runRecords(_ pipeline: Pipeline, _ text: [UInt8]) {
        let first = RecordProcessor(partition: 0, partitions: 1, pipeline: pipeline)
        let cut = text.count / 2
        text[..<cut].withUnsafeBytes { _ = first.process($0) }
        let second = RecordProcessor(partition: 0, partitions: 1, pipeline: pipeline)
        do {
            try second.restore(try first.snapshot())
        } catch {
            preconditionFailure("a records processor's own snapshot did not restore: \(error)")
        }
        text[cut...].withUnsafeBytes { _ = second.process($0) }
        second.finish()
        _ = second.takeOutput()
    }
}
