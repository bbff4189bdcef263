// What a records job emits, and the one text form of its values: shared by the records engine,
// the typed sinks, `sluice verify` and the oracle (docs/DESIGN.md, "Records: output").

/// One fired window of a records job: `values` holds the key parts, then one value per aggregate,
/// in `Pipeline.outputColumns` order after `window_start_ms`.
public struct RecordRow: Sendable, Equatable {
    public var windowStart: Int64
    public var values: [Value]

    public init(windowStart: Int64, values: [Value]) {
        self.windowStart = windowStart
        self.values = values
    }
}

/// An event that dedupe dropped: where it was read, and the value of the dedupe field
/// (`<table>_duplicates`).
public struct DuplicateEvent: Sendable, Equatable {
    public var offset: Int64
    public var value: Value

    public init(offset: Int64, value: Value) {
        self.offset = offset
        self.value = value
    }
}

extension Pipeline {
    /// The schema's fields, then the derived ones, with their types: what key, time, filter,
    /// dedupe and aggregates may name.
    public var recordFields: [(name: String, type: ValueType)] { compiledDerive().fields }

    /// Each derived field's expression checked against the fields before it, and all the fields
    /// with their types: the one place the engine (and `recordFields`) compiles `derive`. The job
    /// loader refused every expression that does not check, or has no type, with its column, so
    /// a pipeline that exists compiles here.
    func compiledDerive() -> (fields: [(name: String, type: ValueType)], derived: [(name: String, expression: TypedExpression)]) {
        var fields = schema.fields.map { (name: $0.name, type: $0.valueType) }
        var derived: [(name: String, expression: TypedExpression)] = []
        for d in derive {
            guard let parsed = try? Expression.parse(d.expression), let typed = try? TypedExpression(parsed, fields: fields),
                  let type = typed.type else {
                preconditionFailure("derive '\(d.name)' was validated when the job loaded")
            }
            derived.append((d.name, typed))
            fields.append((d.name, type))
        }
        return (fields, derived)
    }

    /// The type of every output column, in `outputColumns` order: `window_start_ms` (int64), the
    /// key fields, then the aggregates (docs/DESIGN.md, "Aggregates").
    public var outputTypes: [ValueType] {
        let fields = recordFields
        func type(of name: String) -> ValueType { fields.first { $0.name == name }?.type ?? .int64 }
        return [.int64] + keyFields.map(type(of:)) + aggregates.map { Pipeline.resultType($0, fieldType: $0.field.map(type(of:))) }
    }

    /// The type of an aggregate's result over a field of type `fieldType`.
    public static func resultType(_ aggregate: AggregateSpec, fieldType: ValueType?) -> ValueType {
        switch aggregate.function {
        case .count, .countDistinct: return .int64
        case .sum, .min, .max, .first, .last: return fieldType ?? .int64
        case .avg:
            if case .decimal(let scale) = fieldType { return .decimal(scale: scale + 4) }
            return .float64
        }
    }
}

/// The text form of output values (files, `sluice verify`, the oracle): integers in decimal,
/// float64 as Swift's shortest round-trip text, decimals in canonical form with exactly their
/// scale's fraction digits (`123.40`), timestamps as RFC 3339 UTC with milliseconds
/// (`2026-12-01T10:00:00.000Z`), bools as `true`/`false`, null as an empty field. A row is RFC 4180
/// CSV: a field holding a delimiter, quote, CR or LF, or an empty string, is quoted (`""` is the
/// empty string, an empty field is null).
public enum RecordText {
    public static func text(_ value: Value) -> String {
        switch value {
        case .null: ""
        case .string(let s): s
        case .int64(let v): String(v)
        case .uint64(let v): String(v)
        case .float64(let v): "\(v)"
        case .bool(let v): v ? "true" : "false"
        case .timestamp(let ms): Timestamps.rfc3339(milliseconds: ms)
        case .decimal(let unscaled, let scale): DecimalText.format(unscaled, scale: scale)
        }
    }

    /// One CSV field.
    public static func field(_ value: Value) -> String {
        guard case .string(let s) = value else { return text(value) }
        if s.isEmpty { return "\"\"" }
        guard s.utf8.contains(where: { $0 == 44 || $0 == 34 || $0 == 10 || $0 == 13 }) else { return s }
        var quoted = "\""
        for c in s.unicodeScalars {
            if c == "\"" { quoted += "\"" }
            quoted.unicodeScalars.append(c)
        }
        return quoted + "\""
    }

    /// `window_start_ms,key…,aggregates…` as one CSV line (without its line end).
    public static func row(_ row: RecordRow) -> String {
        ([String(row.windowStart)] + row.values.map(field)).joined(separator: ",")
    }
}
