// The oracle of a job of kind `view`: the rows a view must hold for a table's rows, computed from
// the contract (docs/DESIGN.md, "Views") apart from the engine: each row's schema fields decoded
// from their PostgreSQL text by the oracle's own decoder, the derived fields (the shared expression
// evaluator, as the records oracle uses it), the filter; a row that cannot be decoded, derived or
// filtered is absent. Row texts are as PostgreSQL prints them; `t`/`f` are booleans. Timestamps
// must be RFC 3339 or integers (PostgreSQL's own `timestamptz` text is not read here).

import SluiceCore
import SluiceJob

public struct ViewOracle: Sendable {
    public let job: JobSpec
    private let derived: [(name: String, expression: TypedExpression)]
    private let filter: TypedExpression?
    private let keyIndices: [Int]

    public init(job: JobSpec) throws {
        precondition(job.kind == .view, "a view oracle needs a job of kind view")
        self.job = job
        var fields = job.pipeline.schema.fields.map { (name: $0.name, type: $0.valueType) }
        var derived: [(name: String, expression: TypedExpression)] = []
        for d in job.pipeline.derive {
            let typed = try TypedExpression(Expression.parse(d.expression), fields: fields)
            derived.append((d.name, typed))
            fields.append((d.name, typed.type ?? .int64))
        }
        self.derived = derived
        filter = try job.pipeline.filter.map { try TypedExpression(Expression.parse($0), fields: fields) }
        keyIndices = job.pipeline.keyFields.compactMap { key in job.pipeline.schema.fields.firstIndex { $0.name == key } }
    }

    /// The view of a table: key → row (the schema's fields, then the derived ones). A row is
    /// column name → text (nil: NULL; a column the row lacks reads as NULL).
    public func view(of table: [[String: String?]]) -> [[Value]: [Value]] {
        var view: [[Value]: [Value]] = [:]
        for row in table {
            guard let values = project(row) else { continue }
            view[keyIndices.map { values[$0] }] = values
        }
        return view
    }

    /// One table row as the view keeps it, or nil when the view leaves it out.
    public func project(_ row: [String: String?]) -> [Value]? {
        var values: [Value] = []
        for field in job.pipeline.schema.fields {
            guard let text = row[field.name] ?? nil else {
                guard field.nullable else { return nil }
                values.append(.null)
                continue
            }
            var bytes = Array(text.utf8)
            if field.type == .bool, bytes == [116] || bytes == [102] { bytes = Array((bytes == [116] ? "true" : "false").utf8) }
            guard case .values(let v) = OracleDecoder.text(bytes, field), !violatesMinimum(v[0], field) else { return nil }
            values.append(v[0])
        }
        for d in derived {
            guard case .success(let v) = d.expression.evaluate(values) else { return nil }
            values.append(v)
        }
        if let filter {
            guard case .success(.bool(true)) = filter.evaluate(values) else { return nil }
        }
        return values
    }

    private func violatesMinimum(_ value: Value, _ field: Field) -> Bool {
        switch value {
        case .int64(let v), .decimal(let v, _), .timestamp(let v): return field.minimum.map { v < $0 } ?? false
        case .float64(let v): return field.minimumFloat.map { v < $0 } ?? false
        default: return false
        }
    }

    /// The partition of a key under the job's partitioner (its parts by the contract's key bytes).
    public func partition(of key: [Value], partitions: Int) -> Int? {
        KeyPartitioner(job.pipeline.partitioner, partitions: partitions).partition(of: key)
    }
}
