import SluiceCore
import Yams

/// A job as written by its user: the pipeline plus where it reads, writes and how often it
/// checkpoints. `JobSpec.parse` refuses a bad spec with the path of the field and what it expects.
public struct JobSpec: Sendable, Equatable {
    public var name: String
    /// Windowed aggregates (the default), or the source's change events written as they are.
    public var kind: JobKind
    /// The windowed pipeline (unused by a `changes` job, which holds the reference one).
    public var pipeline: Pipeline
    /// Source URI (`file:DIR`, `gen:seed=1,events=1000000,partitions=8`); `--input` overrides it.
    public var source: String?
    /// Sink URI (`file:DIR`, `sqlite:PATH`); `--output` overrides it.
    public var sink: String?
    /// The sink's table for results (SQLite, PostgreSQL).
    public var table: String
    public var checkpointIntervalMs: Int64

    public init(name: String, kind: JobKind = .windows, pipeline: Pipeline, source: String? = nil, sink: String? = nil,
                table: String = "results", checkpointIntervalMs: Int64 = 1_000) {
        self.name = name
        self.kind = kind
        self.pipeline = pipeline
        self.source = source
        self.sink = sink
        self.table = table
        self.checkpointIntervalMs = checkpointIntervalMs
    }

    public static let defaultBidsTumbling = JobSpec(name: "bids-tumbling", pipeline: .bidsTumbling)

    /// What a checkpoint store is bound to, so that a changed job never resumes another's state.
    public var fingerprint: String {
        switch kind {
        case .windows: pipeline.fingerprint
        case .changes: "changes"
        case .view: "view " + pipeline.fingerprint
        }
    }
}

/// The names a sink derives from a job's table, and the rules they must follow.
public enum TableNames {
    /// The checkpoint store's tables (`sluice_meta`, `sluice_checkpoints`, …) and the sinks' own
    /// columns (`sluice_partition`, `sluice_seq`) start with it; a user's names may not.
    public static let reservedPrefix = "sluice_"
    /// PostgreSQL truncates longer identifiers (NAMEDATALEN 64, less the terminator).
    public static let maxIdentifierBytes = 63
    /// Every name a sink makes from the table name: late events, dead letters, the PostgreSQL
    /// sequence index and the primary key PostgreSQL names after a table.
    public static let derivedSuffixes = ["_late", "_dead_letters", "_sluice_seq", "_sluice_seq_brin", "_dead_letters_pkey", "_undo"]
    public static var maxTableBytes: Int { maxIdentifierBytes - (derivedSuffixes.map(\.utf8.count).max() ?? 0) }

    /// Why `table` cannot be a results table, or nil when it can.
    public static func problem(_ table: String) -> String? {
        if table.lowercased().hasPrefix(reservedPrefix) {
            return "'\(table)' starts with '\(reservedPrefix)', which names the checkpoint store's own tables; choose another name"
        }
        if table.utf8.count > maxTableBytes {
            return "'\(table)' is \(table.utf8.count) bytes; at most \(maxTableBytes), so that the names derived from it (such as '\(table)_dead_letters') fit PostgreSQL's \(maxIdentifierBytes)-byte limit"
        }
        return nil
    }
}

/// `windows`: decode events of the schema, window and aggregate them (the default).
/// `changes`: write every change event of a change-data-capture source (`postgres-cdc://`) as one
/// row (lsn, index, commit time, table, op, before, after); no schema, window or aggregates.
/// `view`: keep the latest row per key of a changelog (a CDC source's inserts, updates and
/// deletes) in the sink's table, shaped by the schema, `derive` and `filter`; `key` is the view's
/// primary key. No time, window or aggregates (docs/DESIGN.md, "Views").
public enum JobKind: String, Sendable, Equatable {
    case windows
    case changes
    case view
}

/// A refused job spec: `path` names the field (`window.size_ms`, `aggregates[1]`), `message` says
/// what was expected and how to fix it.
public struct JobSpecError: Error, Equatable, CustomStringConvertible {
    public var path: String
    public var message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { path.isEmpty ? "job spec: \(message)" : "job spec: \(path): \(message)" }
}

extension JobSpec {
    public static func load(path: String) throws -> JobSpec {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw JobSpecError(path: "", message: "cannot read job file '\(path)': \(error.localizedDescription)")
        }
        return try parse(yaml: text)
    }

    /// Parses and validates a job: integer CSV jobs (the fast path) and records alike.
    public static func parse(yaml: String) throws -> JobSpec {
        let reader = SpecReader()
        return try reader.job(reader.yaml.root(of: yaml, empty: "the job spec is empty"))
    }
}

/// Walks the YAML tree by hand so that every error carries the path of the offending field.
struct SpecReader {
    let yaml = YAMLReader { JobSpecError(path: $0, message: $1) }

    func job(_ root: Node) throws -> JobSpec {
        let top = try yaml.mapping(root, path: "", allowed: [
            "name", "kind", "schema", "key", "time", "watermark", "window", "aggregates", "source", "sink", "table",
            "checkpoint", "format", "csv", "partitioner", "partition_check", "filter", "derive", "dedupe",
        ])
        let name = try top["name"].map { try yaml.string($0, path: "name") } ?? "job"
        let kindName = try top["kind"].map { try yaml.string($0, path: "kind") } ?? "windows"
        guard let kind = JobKind(rawValue: kindName) else {
            throw JobSpecError(path: "kind", message: "unknown job kind '\(kindName)'; expected windows, changes or view")
        }
        if kind == .changes {
            for field in ["schema", "key", "time", "watermark", "window", "aggregates", "format", "csv", "partitioner",
                          "partition_check", "filter", "derive", "dedupe"] where top[field] != nil {
                throw JobSpecError(path: field, message: "not used by a job of kind changes (it writes change events as they are); remove it")
            }
            return JobSpec(name: name, kind: .changes, pipeline: .bidsTumbling,
                           source: try top["source"].map { try yaml.string($0, path: "source") },
                           sink: try top["sink"].map { try yaml.string($0, path: "sink") },
                           table: try top["table"].map { try tableName($0) } ?? "changes",
                           checkpointIntervalMs: try checkpointInterval(top))
        }
        if kind == .view { return try view(top, name: name) }
        var schema = try top["schema"].map { try self.schema($0) } ?? .bids
        let format = try self.format(top)
        if try top["time"].map({ try yaml.string($0, path: "time") }) == Pipeline.kafkaTimestamp {
            // The message timestamp: a Kafka source supplies it as this last field of each record.
            if schema.fields.contains(where: { $0.name == Pipeline.kafkaTimestamp }) {
                throw JobSpecError(path: "schema", message: "'\(Pipeline.kafkaTimestamp)' is the Kafka message timestamp that `time: \(Pipeline.kafkaTimestamp)` supplies; do not declare it, or name your field otherwise")
            }
            schema.fields.append(Field(name: Pipeline.kafkaTimestamp, type: .timestamp))
        }
        let derive = try self.derive(top["derive"], schema: schema)
        // Every field an expression, the key, the time, dedupe or an aggregate may name: the
        // schema's, then the derived ones, in order.
        let fields = schema.fields.map { (name: $0.name, type: $0.valueType) } + derive.map { (name: $0.field.name, type: $0.type) }
        let keys = try top["key"].map { try keyFields($0) } ?? ["auction"]
        for (i, key) in keys.enumerated() {
            let path = keys.count == 1 ? "key" : "key[\(i)]"
            guard let field = fields.first(where: { $0.name == key }) else {
                throw JobSpecError(path: path, message: "no field '\(key)'; expected one of \(fields.map(\.name).joined(separator: ", "))")
            }
            if field.type == .float64 {
                throw JobSpecError(path: path, message: "the key field '\(key)' is float64; a key may be of any type but float (equal floats need not print or hash alike)")
            }
            if keys[..<i].contains(key) { throw JobSpecError(path: path, message: "'\(key)' is listed twice") }
        }
        let time = try top["time"].map { try yaml.string($0, path: "time") } ?? "event_time_ms"
        guard let timeField = fields.first(where: { $0.name == time }) else {
            throw JobSpecError(path: "time", message: "no field '\(time)'; expected one of \(fields.map(\.name).joined(separator: ", "))")
        }
        guard timeField.type == .int64 || timeField.type == .timestamp else {
            throw JobSpecError(path: "time", message: "the time field '\(time)' must be int64 (ms since the Unix epoch) or timestamp, it is \(timeField.type)")
        }
        if let declared = schema.fields.first(where: { $0.name == time }), declared.nullable {
            throw JobSpecError(path: "time", message: "the time field '\(time)' is nullable; an event without a time cannot be windowed: remove `nullable: true`")
        }
        let partitioner = try self.partitioner(top["partitioner"], keys: keys, fields: fields)
        let partitionCheck = try top["partition_check"].map { try onOff($0, path: "partition_check") } ?? true
        let filter = try top["filter"].map { try expression($0, path: "filter", fields: fields, expecting: .bool) }
        let dedupe = try top["dedupe"].map { try self.dedupe($0, fields: fields) }
        let watermark = try top["watermark"].map { try self.watermark($0) } ?? WatermarkSpec()
        guard let windowNode = top["window"] else {
            throw JobSpecError(path: "window", message: "missing; expected for example `window: {kind: tumbling, size_ms: 10000}`")
        }
        let window = try self.window(windowNode)
        guard let aggregatesNode = top["aggregates"] else {
            throw JobSpecError(path: "aggregates", message: "missing; expected a list such as `[count, {sum: price}]`")
        }
        let aggregates = try self.aggregates(aggregatesNode, fields: fields)
        let source = try top["source"].map { try yaml.string($0, path: "source") }
        let sink = try top["sink"].map { try yaml.string($0, path: "sink") }
        let table = try top["table"].map { try tableName($0) } ?? "results"
        let interval = try checkpointInterval(top)
        try checkOutputColumns(keys: keys, aggregates: aggregates)
        let pipeline = Pipeline(schema: schema, keyFields: keys, timeField: time, watermark: watermark, window: window,
                                aggregates: aggregates, format: format, partitioner: partitioner, partitionCheck: partitionCheck,
                                filter: filter, derive: derive.map(\.field), dedupe: dedupe)
        return JobSpec(name: name, pipeline: pipeline, source: source, sink: sink, table: table,
                       checkpointIntervalMs: interval)
    }

    /// A job of kind `view`: schema, key (schema fields: the view's primary key), derive, filter.
    private func view(_ top: [String: Node], name: String) throws -> JobSpec {
        for field in ["time", "watermark", "window", "aggregates", "dedupe"] where top[field] != nil {
            throw JobSpecError(path: field, message: "not used by a job of kind view (it keeps the latest row of each key, with no time or windows); remove it")
        }
        guard let schemaNode = top["schema"] else {
            throw JobSpecError(path: "schema", message: "missing; a view needs the columns it keeps, such as `- {name: id, type: string}`")
        }
        let schema = try self.schema(schemaNode)
        let format = try self.format(top)
        let derive = try self.derive(top["derive"], schema: schema)
        let fields = schema.fields.map { (name: $0.name, type: $0.valueType) } + derive.map { (name: $0.field.name, type: $0.type) }
        guard let keyNode = top["key"] else {
            throw JobSpecError(path: "key", message: "missing; a view needs its primary key: a field of the schema, or a list of them")
        }
        let keys = try keyFields(keyNode)
        for (i, key) in keys.enumerated() {
            let path = keys.count == 1 ? "key" : "key[\(i)]"
            guard let field = schema.fields.first(where: { $0.name == key }) else {
                let derived = derive.contains { $0.field.name == key } ? " ('\(key)' is derived; a view's key must be a column of the changelog, which decides where its changes are read)" : ""
                throw JobSpecError(path: path, message: "no schema field '\(key)'\(derived); expected one of \(names(schema))")
            }
            if field.type == .float64 {
                throw JobSpecError(path: path, message: "the key field '\(key)' is float64; a key may be of any type but float (equal floats need not print or hash alike)")
            }
            if field.nullable {
                throw JobSpecError(path: path, message: "the key field '\(key)' is nullable; a view's primary key cannot be null: remove `nullable: true`")
            }
            if keys[..<i].contains(key) { throw JobSpecError(path: path, message: "'\(key)' is listed twice") }
        }
        if let clash = fields.first(where: { $0.name.lowercased().hasPrefix(TableNames.reservedPrefix) }) {
            throw JobSpecError(path: "schema", message: "'\(clash.name)' starts with '\(TableNames.reservedPrefix)', which names the sink's own columns; rename it")
        }
        let partitioner = try self.partitioner(top["partitioner"], keys: keys, fields: fields)
        let partitionCheck = try top["partition_check"].map { try onOff($0, path: "partition_check") } ?? true
        let filter = try top["filter"].map { try expression($0, path: "filter", fields: fields, expecting: .bool) }
        // A view has no time or windows: the pipeline holds neutral ones that nothing reads.
        let pipeline = Pipeline(schema: schema, keyFields: keys, timeField: keys[0], watermark: WatermarkSpec(),
                                window: .tumbling(sizeMs: 1), aggregates: [], format: format, partitioner: partitioner,
                                partitionCheck: partitionCheck, filter: filter, derive: derive.map(\.field))
        return JobSpec(name: name, kind: .view, pipeline: pipeline,
                       source: try top["source"].map { try yaml.string($0, path: "source") },
                       sink: try top["sink"].map { try yaml.string($0, path: "sink") },
                       table: try top["table"].map { try tableName($0) } ?? "view",
                       checkpointIntervalMs: try checkpointInterval(top))
    }

    private func checkpointInterval(_ top: [String: Node]) throws -> Int64 {
        guard let checkpoint = top["checkpoint"] else { return 1_000 }
        let map = try yaml.mapping(checkpoint, path: "checkpoint", allowed: ["interval_ms"])
        return try map["interval_ms"].map { try positive($0, path: "checkpoint.interval_ms") } ?? 1_000
    }

    private func schema(_ node: Node) throws -> Schema {
        guard case .sequence(let items) = node, !items.isEmpty else {
            throw JobSpecError(path: "schema", message: "expected a non-empty list of fields such as `- {name: price, type: int64, min: 1}`")
        }
        let types = FieldType.allCases.map(\.rawValue).joined(separator: ", ")
        var fields: [Field] = []
        for (i, item) in items.enumerated() {
            let path = "schema[\(i)]"
            let map = try yaml.mapping(item, path: path, allowed: ["name", "type", "min", "nullable", "scale", "path"])
            guard let nameNode = map["name"] else { throw JobSpecError(path: "\(path).name", message: "missing") }
            let name = try identifier(nameNode, path: "\(path).name")
            guard !fields.contains(where: { $0.name == name }) else {
                throw JobSpecError(path: "\(path).name", message: "field '\(name)' is declared twice")
            }
            guard let typeNode = map["type"] else {
                throw JobSpecError(path: "\(path).type", message: "missing; expected one of \(types)")
            }
            let typeName = try yaml.string(typeNode, path: "\(path).type")
            guard let type = FieldType(rawValue: typeName) else {
                throw JobSpecError(path: "\(path).type", message: "unknown type '\(typeName)'; expected one of \(types)")
            }
            var field = Field(name: name, type: type)
            if type == .decimal {
                guard let scaleNode = map["scale"] else {
                    throw JobSpecError(path: "\(path).scale", message: "missing; a decimal needs its number of fraction digits, e.g. `scale: 2` for money")
                }
                let scale = try yaml.integer(scaleNode, path: "\(path).scale")
                guard (0...Int64(ValueType.maxScale)).contains(scale) else {
                    throw JobSpecError(path: "\(path).scale", message: "expected 0 to \(ValueType.maxScale) (the value is kept as a scaled 64-bit integer), got \(scale)")
                }
                field.scale = Int(scale)
            } else if map["scale"] != nil {
                throw JobSpecError(path: "\(path).scale", message: "only a decimal has a scale; remove it")
            }
            if let minNode = map["min"] {
                let text = try yaml.string(minNode, path: "\(path).min")
                switch type {
                case .int64:
                    field.minimum = try yaml.integer(minNode, path: "\(path).min")
                case .decimal:
                    guard case .success(let v) = DecimalText.parse(Array(text.utf8), scale: field.scale, exponent: false) else {
                        throw JobSpecError(path: "\(path).min", message: "expected a decimal with at most \(field.scale) fraction digits, got '\(text)'")
                    }
                    field.minimum = v
                case .float64:
                    guard text.allSatisfy({ "0123456789.eE+-".contains($0) }), let v = Double(text), v.isFinite else {
                        throw JobSpecError(path: "\(path).min", message: "expected a finite number, got '\(text)'")
                    }
                    field.minimumFloat = v
                default:
                    throw JobSpecError(path: "\(path).min", message: "a minimum is only supported on int64, decimal and float64 fields")
                }
            }
            if let nullable = map["nullable"] { field.nullable = try bool(nullable, path: "\(path).nullable") }
            if let pathNode = map["path"] {
                let text = try yaml.string(pathNode, path: "\(path).path")
                let steps = text.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
                guard !steps.contains(where: \.isEmpty) else {
                    throw JobSpecError(path: "\(path).path", message: "expected dot-separated names such as customer.id, got '\(text)'")
                }
                field.path = steps
            }
            fields.append(field)
        }
        return Schema(fields: fields)
    }

    private func watermark(_ node: Node) throws -> WatermarkSpec {
        let map = try yaml.mapping(node, path: "watermark", allowed: ["max_out_of_orderness_ms", "idle_timeout_ms"])
        var spec = WatermarkSpec()
        if let n = map["max_out_of_orderness_ms"] {
            spec.maxOutOfOrdernessMs = try nonNegative(n, path: "watermark.max_out_of_orderness_ms")
        }
        if let n = map["idle_timeout_ms"] { spec.idleTimeoutMs = try positive(n, path: "watermark.idle_timeout_ms") }
        return spec
    }

    private func window(_ node: Node) throws -> WindowSpec {
        let map = try yaml.mapping(node, path: "window", allowed: ["kind", "size_ms", "slide_ms", "gap_ms"])
        guard let kindNode = map["kind"] else {
            throw JobSpecError(path: "window.kind", message: "missing; expected one of tumbling, sliding, session")
        }
        func require(_ key: String) throws -> Int64 {
            guard let n = map[key] else { throw JobSpecError(path: "window.\(key)", message: "missing; expected a positive number of milliseconds") }
            return try positive(n, path: "window.\(key)")
        }
        func forbid(_ keys: [String], kind: String) throws {
            for key in keys where map[key] != nil {
                throw JobSpecError(path: "window.\(key)", message: "not used by a \(kind) window; remove it")
            }
        }
        switch try yaml.string(kindNode, path: "window.kind") {
        case "tumbling":
            try forbid(["slide_ms", "gap_ms"], kind: "tumbling")
            return .tumbling(sizeMs: try require("size_ms"))
        case "sliding":
            try forbid(["gap_ms"], kind: "sliding")
            let size = try require("size_ms"), slide = try require("slide_ms")
            guard slide <= size, size % slide == 0 else {
                throw JobSpecError(path: "window.slide_ms", message: "must divide size_ms (\(size)) exactly, got \(slide)")
            }
            guard size / slide <= 1_000 else {
                throw JobSpecError(path: "window.slide_ms", message: "size_ms / slide_ms must be at most 1000 (windows per event), got \(size / slide)")
            }
            return .sliding(sizeMs: size, slideMs: slide)
        case "session":
            try forbid(["size_ms", "slide_ms"], kind: "session")
            return .session(gapMs: try require("gap_ms"))
        case let other:
            throw JobSpecError(path: "window.kind", message: "unknown window kind '\(other)'; expected one of tumbling, sliding, session")
        }
    }

    private func aggregates(_ node: Node, fields: [(name: String, type: ValueType)]) throws -> [AggregateSpec] {
        guard case .sequence(let items) = node, !items.isEmpty else {
            throw JobSpecError(path: "aggregates", message: "expected a non-empty list such as `[count, {sum: price}, {max: price}]`")
        }
        var result: [AggregateSpec] = []
        let functions = AggregateFunction.allCases.map(\.rawValue).joined(separator: ", ")
        for (i, item) in items.enumerated() {
            let path = "aggregates[\(i)]"
            let spec: AggregateSpec
            switch item {
            case .scalar(let scalar):
                guard scalar.string == "count" else {
                    throw JobSpecError(path: path, message: "'\(scalar.string)' needs a field: write `{\(scalar.string): FIELD}`; only `count` stands alone")
                }
                spec = AggregateSpec(.count)
            case .mapping(let map):
                guard map.count == 1, let (keyNode, valueNode) = map.first.map({ ($0.key, $0.value) }) else {
                    throw JobSpecError(path: path, message: "expected one `function: field` pair such as `{sum: price}`")
                }
                let fname = try yaml.string(keyNode, path: path)
                guard let function = AggregateFunction(rawValue: fname) else {
                    throw JobSpecError(path: path, message: "unknown aggregate '\(fname)'; expected one of \(functions)")
                }
                guard function != .count else {
                    throw JobSpecError(path: path, message: "count takes no field; write `count`")
                }
                let field = try yaml.string(valueNode, path: "\(path).\(fname)")
                guard let declared = fields.first(where: { $0.name == field }) else {
                    throw JobSpecError(path: "\(path).\(fname)", message: "no field '\(field)'; expected one of \(fields.map(\.name).joined(separator: ", "))")
                }
                if let problem = SpecReader.aggregateProblem(function, declared.type) {
                    throw JobSpecError(path: "\(path).\(fname)", message: "field '\(field)' is \(declared.type); \(problem)")
                }
                spec = AggregateSpec(function, field)
            default:
                throw JobSpecError(path: path, message: "expected `count` or `{function: field}` with function one of \(functions)")
            }
            guard !result.contains(spec) else {
                throw JobSpecError(path: path, message: "\(spec.columnName) is listed twice")
            }
            result.append(spec)
        }
        return result
    }

    /// Which field types an aggregate takes (docs/DESIGN.md, "Aggregates"); nil when it takes `type`.
    static func aggregateProblem(_ function: AggregateFunction, _ type: ValueType) -> String? {
        switch function {
        case .count: return nil
        case .sum, .avg:
            switch type {
            case .int64, .float64: return nil
            case .decimal(let scale):
                if function == .avg, scale + 4 > ValueType.maxScale {
                    return "avg of a decimal is kept at its scale + 4, at most \(ValueType.maxScale); use a scale up to \(ValueType.maxScale - 4)"
                }
                return nil
            default: return "\(function.rawValue) needs an int64, decimal or float64 field"
            }
        case .min, .max:
            switch type {
            case .int64, .uint64, .decimal, .float64, .timestamp, .string: return nil
            default: return "\(function.rawValue) needs an int64, uint64, decimal, float64, timestamp or string field"
            }
        case .countDistinct, .first, .last:
            return nil
        }
    }

    /// The results table's columns are `window_start_ms`, the key, the aggregates' columns and the
    /// sink's `sluice_partition`, `sluice_seq`: refuse a spec whose names collide, here, rather than
    /// in a CREATE TABLE at the first commit.
    private func checkOutputColumns(keys: [String], aggregates: [AggregateSpec]) throws {
        var taken = ["window_start_ms": "the window start column"]
        func claim(_ column: String, path: String, what: String) throws {
            if let holder = taken[column.lowercased()] {
                throw JobSpecError(path: path, message: "\(what) would be the output column '\(column)', which is already \(holder); rename it")
            }
            if column.lowercased().hasPrefix(TableNames.reservedPrefix) {
                throw JobSpecError(path: path, message: "\(what) would be the output column '\(column)'; names starting with '\(TableNames.reservedPrefix)' are Sluice's own; rename it")
            }
            if column.utf8.count > TableNames.maxIdentifierBytes {
                throw JobSpecError(path: path, message: "\(what) would be the output column '\(column)', longer than \(TableNames.maxIdentifierBytes) bytes (PostgreSQL's limit); use a shorter name")
            }
            taken[column.lowercased()] = "\(what)"
        }
        for (i, key) in keys.enumerated() {
            try claim(key, path: keys.count == 1 ? "key" : "key[\(i)]", what: "the key '\(key)'")
        }
        for (i, spec) in aggregates.enumerated() {
            try claim(spec.columnName, path: "aggregates[\(i)]", what: "the aggregate \(spec.columnName)")
        }
    }

    /// A results table: a plain name, not one of Sluice's own (the checkpoint store shares the
    /// database), short enough that every name derived from it fits PostgreSQL's 63 bytes.
    private func tableName(_ node: Node) throws -> String {
        let name = try identifier(node, path: "table")
        if let problem = TableNames.problem(name) { throw JobSpecError(path: "table", message: problem) }
        return name
    }

    // MARK: scalars

    func identifier(_ node: Node, path: String) throws -> String {
        let text = try yaml.string(node, path: path)
        let ok = text.utf8.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 65 && $0 <= 90) || ($0 >= 48 && $0 <= 57) || $0 == 95 }
        guard ok, let first = text.utf8.first, !(first >= 48 && first <= 57) else {
            throw JobSpecError(path: path, message: "'\(text)' is not a valid name; use letters, digits and _ (not starting with a digit)")
        }
        return text
    }

    /// Durations are bounded (about 31 years) so that window arithmetic can never overflow.
    static let maxDurationMs: Int64 = 1_000_000_000_000

    func positive(_ node: Node, path: String) throws -> Int64 {
        let value = try yaml.integer(node, path: path)
        guard value > 0, value <= SpecReader.maxDurationMs else {
            throw JobSpecError(path: path, message: "expected a positive integer up to \(SpecReader.maxDurationMs), got \(value)")
        }
        return value
    }

    func nonNegative(_ node: Node, path: String) throws -> Int64 {
        let value = try yaml.integer(node, path: path)
        guard value >= 0, value <= SpecReader.maxDurationMs else {
            throw JobSpecError(path: path, message: "expected an integer from 0 to \(SpecReader.maxDurationMs), got \(value)")
        }
        return value
    }

    private func names(_ schema: Schema) -> String { schema.fields.map(\.name).joined(separator: ", ") }
}
