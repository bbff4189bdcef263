import SluiceCore
import SluiceJob

/// A window result (or a view's row) as a Kafka message: key = the row's key in the records contract's canonical
/// bytes (`KeyBytes`: UTF-8 text, integers in decimal, a composite key's parts joined by 0x1f);
/// value = a JSON object of the output columns by name: integers and floats as JSON numbers,
/// booleans, null, strings, and (so that no consumer reads them through a double) decimals as
/// strings in canonical text (`"12.50"`) and timestamps as RFC 3339 strings.
struct KafkaRows: Sendable {
    let names: [String]
    let keyCount: Int
    /// The integer path's rows (nil for a records job).
    let formatter: RowFormatter?
    /// The output columns as fields of a JSON schema, to read values back (`sluice verify`).
    let schema: Schema
    /// A `kind: changes` job: reads the key column out of a row image (nil for windowed jobs).
    let changeKey: RecordDecoder?

    init(job: JobSpec, changeKey column: String? = nil) {
        changeKey = job.kind == .changes ? column.map {
            RecordDecoder(schema: Schema(fields: [Field(name: $0, type: .string, nullable: true)]), format: .json)
        } : nil
        keyCount = job.pipeline.keyFields.count
        if job.kind == .view {
            // A view's columns: the schema's fields, then the derived ones.
            let fields = job.pipeline.recordFields
            names = fields.map(\.name)
            formatter = nil
            schema = Schema(fields: fields.map { KafkaRows.field($0.name, $0.type) })
            return
        }
        names = job.pipeline.outputColumns
        if job.pipeline.isIntegerCSV {
            let formatter = RowFormatter(layout: AggregateLayout(pipeline: job.pipeline))
            self.formatter = formatter
            schema = Schema(fields: names.enumerated().map { i, name in
                Field(name: name, type: i == 1 ? .uint64 : (i >= 2 && name.hasPrefix("avg_") ? .float64 : .int64), nullable: true)
            })
        } else {
            formatter = nil
            schema = Schema(fields: zip(names, job.pipeline.outputTypes).map { KafkaRows.field($0, $1) })
        }
    }

    /// A nullable field of a value's type, to read a message's JSON back.
    static func field(_ name: String, _ type: ValueType) -> Field {
        switch type {
        case .string: Field(name: name, type: .string, nullable: true)
        case .int64: Field(name: name, type: .int64, nullable: true)
        case .uint64: Field(name: name, type: .uint64, nullable: true)
        case .float64: Field(name: name, type: .float64, nullable: true)
        case .bool: Field(name: name, type: .bool, nullable: true)
        case .timestamp: Field(name: name, type: .timestamp, nullable: true)
        case .decimal(let scale): Field(name: name, type: .decimal, scale: scale, nullable: true)
        }
    }

    /// The output's rows as messages, in order.
    func messages(_ output: PartitionOutput) -> [KafkaOutputMessage] {
        var messages: [KafkaOutputMessage] = []
        messages.reserveCapacity(output.rowCount)
        if let formatter {
            let rows = output.rows
            for r in 0..<rows.count {
                var values: [Value] = [.int64(rows.starts[r]), .uint64(rows.keys[r])]
                for a in formatter.layout.outputs.indices {
                    switch formatter.value(rows, row: r, aggregate: a) {
                    case .integer(let v): values.append(.int64(v))
                    case .real(let d): values.append(.float64(d))
                    }
                }
                messages.append(KafkaOutputMessage(key: Array(String(rows.keys[r]).utf8), value: json(values)))
            }
        }
        if let changeKey {
            for change in output.changes { messages.append(KafkaRows.message(change, key: changeKey)) }
        }
        // A view's changes: a compacted topic's records, the key's row or a tombstone.
        for change in output.viewChanges {
            var key: [UInt8] = []
            _ = KeyBytes.append(change.key, to: &key)
            messages.append(KafkaOutputMessage(key: key, value: change.row.map(json)))
        }
        for row in output.records {
            var key: [UInt8] = []
            _ = KeyBytes.append(Array(row.values.prefix(keyCount)), to: &key)
            messages.append(KafkaOutputMessage(key: key, value: json([.int64(row.windowStart)] + row.values)))
        }
        return messages
    }

    /// A change event: key = the key column's text in the row after the change (before it, for a
    /// delete; empty when absent or null); value = `{"lsn":…,"lsn_index":…,"commit_time_ms":…,
    /// "table_name":…,"op":…,"before":{…}|null,"after":{…}|null}`, the columns of the change table.
    static func message(_ change: ChangeRow, key decoder: RecordDecoder) -> KafkaOutputMessage {
        let image = change.after.isEmpty ? change.before : change.after
        var key: [UInt8] = []
        if case .success(let values) = image.utf8.withContiguousStorageIfAvailable({ decoder.decode(UnsafeRawBufferPointer($0)) })
            ?? Array(image.utf8).withUnsafeBytes({ decoder.decode($0) }), case .string(let text)? = values.first {
            key = Array(text.utf8)
        }
        var out: [UInt8] = Array(#"{"lsn":"#.utf8)
        out += Array("\(change.lsn),\"lsn_index\":\(change.index),\"commit_time_ms\":\(change.commitTimeMs),\"table_name\":".utf8)
        string(change.table, to: &out)
        out += Array(#","op":"#.utf8)
        string(change.op, to: &out)
        out += Array(#","before":"#.utf8) + Array((change.before.isEmpty ? "null" : change.before).utf8)
        out += Array(#","after":"#.utf8) + Array((change.after.isEmpty ? "null" : change.after).utf8)
        out.append(125)
        return KafkaOutputMessage(key: key, value: out)
    }

    /// `{"name":value,…}` over the output columns.
    func json(_ values: [Value]) -> [UInt8] {
        var out: [UInt8] = [123]
        for (i, value) in values.enumerated() {
            if i > 0 { out.append(44) }
            KafkaRows.string(names[i], to: &out)
            out.append(58)
            switch value {
            case .null: out += Array("null".utf8)
            case .string(let s): KafkaRows.string(s, to: &out)
            case .int64(let v): out += Array(String(v).utf8)
            case .uint64(let v): out += Array(String(v).utf8)
            case .float64(let v): out += Array((v.isFinite ? "\(v)" : "null").utf8)
            case .bool(let v): out += Array((v ? "true" : "false").utf8)
            case .decimal, .timestamp: KafkaRows.string(RecordText.text(value), to: &out)
            }
        }
        out.append(125)
        return out
    }

    /// A JSON string literal.
    static func string(_ text: String, to out: inout [UInt8]) {
        out.append(34)
        for byte in text.utf8 {
            switch byte {
            case 34: out += [92, 34]
            case 92: out += [92, 92]
            case 10: out += [92, 110]
            case 13: out += [92, 114]
            case 9: out += [92, 116]
            case 0..<32:
                let hex = Array("0123456789abcdef".utf8)
                out += [92, 117, 48, 48, hex[Int(byte >> 4)], hex[Int(byte & 15)]]
            default: out.append(byte)
            }
        }
        out.append(34)
    }

    /// A message value read back as the oracle's row text (`window_start_ms,values…`).
    func rowText(_ value: UnsafeRawBufferPointer) throws -> String {
        let decoder = RecordDecoder(schema: schema, format: .json)
        switch decoder.decode(value) {
        case .success(let values):
            guard case .int64(let start)? = values.first else { throw SinkError("a result message without window_start_ms") }
            return RecordText.row(RecordRow(windowStart: start, values: Array(values.dropFirst())))
        case .failure(let failure):
            throw SinkError("a result message the sink did not write: \(failure.reason)")
        }
    }
}
