// The validated description of a job that the engine runs: schema, key, time, watermark, window,
// aggregates. Built by SluiceJob from YAML; plain values, no behaviour beyond lookups.

/// The type of a schema field. The bids workload's CSV of integers uses int64 and uint64 only (the
/// engine's fast path); JSON and CSV records may use every type (docs/DESIGN.md, "Records").
public enum FieldType: String, Sendable, Equatable, CaseIterable {
    case string
    case int64
    case uint64
    case float64
    case bool
    /// RFC 3339 text with an offset or `Z`, or an integer of milliseconds since the epoch.
    case timestamp
    /// Exact, kept as an Int64 scaled by 10^scale (`Field.scale`).
    case decimal
}

public struct Field: Sendable, Equatable {
    public var name: String
    public var type: FieldType
    /// The least valid value; a smaller one is malformed (the bid schema: price >= 1). For int64 the
    /// value, for decimal the scaled value (`min: 0.01` at scale 2 is 1), for timestamp milliseconds.
    public var minimum: Int64?
    /// The least valid value of a float64 field.
    public var minimumFloat: Double?
    /// Fraction digits of a decimal (0...18); 0 for every other type.
    public var scale: Int
    /// A null or missing value is valid (else it is a dead letter).
    public var nullable: Bool
    /// Where a JSON record holds the value: `customer.id` is ["customer", "id"]. Nil: the name.
    public var path: [String]?

    public init(name: String, type: FieldType, minimum: Int64? = nil, minimumFloat: Double? = nil, scale: Int = 0,
                nullable: Bool = false, path: [String]? = nil) {
        self.name = name
        self.type = type
        self.minimum = minimum
        self.minimumFloat = minimumFloat
        self.scale = scale
        self.nullable = nullable
        self.path = path
    }

    public var valueType: ValueType {
        switch type {
        case .string: .string
        case .int64: .int64
        case .uint64: .uint64
        case .float64: .float64
        case .bool: .bool
        case .timestamp: .timestamp
        case .decimal: .decimal(scale: scale)
        }
    }

    /// The JSON path, dot-separated, as written in the job.
    public var jsonPath: [String] { path ?? [name] }
}

public struct Schema: Sendable, Equatable {
    public var fields: [Field]

    public init(fields: [Field]) { self.fields = fields }

    /// `auction,bidder,price,event_time_ms` (docs/WORKLOAD.md).
    public static let bids = Schema(fields: [
        Field(name: "auction", type: .uint64),
        Field(name: "bidder", type: .uint64),
        Field(name: "price", type: .int64, minimum: 1),
        Field(name: "event_time_ms", type: .int64),
    ])

    public func index(of name: String) -> Int? { fields.firstIndex { $0.name == name } }
}

/// How events are read from a line, a message value or a row image.
public enum RecordFormat: Sendable, Equatable {
    /// RFC 4180 CSV. With `header`, the first record names the fields (mapped by name) and is not a
    /// record itself; without, values come in schema order.
    case csv(header: Bool, delimiter: UInt8)
    /// One JSON object per line or message; fields are read by their `path`.
    case json

    public static let plainCSV = RecordFormat.csv(header: false, delimiter: UInt8(ascii: ","))
}

/// Which partition a key belongs to (docs/DESIGN.md, "Keys and partitions").
public enum Partitioner: String, Sendable, Equatable {
    /// `(murmur2(key bytes) & 0x7fffffff) % P`: the Kafka Java client's default partitioner.
    case murmur2
    /// A single integer key: `key mod P`, Euclidean (a negative key goes to `((key % P) + P) % P`).
    case modulo
    /// `crc32(key bytes) % P`: librdkafka's default partitioner (`consistent_random`) for keyed
    /// messages, for topics written by librdkafka-based producers (kcat, confluent-kafka, …).
    case consistentRandom = "consistent_random"
}

/// A computed field: `name` is the value of `expression` (text in the expression language), added
/// after the schema's fields and usable by key, time, filter, dedupe and aggregates.
public struct DerivedField: Sendable, Equatable {
    public var name: String
    public var expression: String

    public init(name: String, expression: String) {
        self.name = name
        self.expression = expression
    }
}

/// Windowed duplicate suppression: of events with the same value of `field`, the first (in
/// partition order) is kept and a later one whose event time is within `withinMs` of it is dropped.
public struct DedupeSpec: Sendable, Equatable {
    public var field: String
    public var withinMs: Int64

    public init(field: String, withinMs: Int64) {
        self.field = field
        self.withinMs = withinMs
    }
}

public enum WindowSpec: Sendable, Equatable {
    /// Windows `[t - t mod size, +size)`, aligned to the Unix epoch.
    case tumbling(sizeMs: Int64)
    /// Windows of `size` starting every `slide` (aligned to the epoch); `size` is a multiple of `slide`.
    case sliding(sizeMs: Int64, slideMs: Int64)
    /// Per key, events closer than `gap` merge into one session `[first, last + gap)`.
    case session(gapMs: Int64)
}

public enum AggregateFunction: String, Sendable, Equatable, CaseIterable {
    case count, sum, min, max, avg
    case countDistinct = "count_distinct"
    /// The value of the event with the least (greatest, for `last`) event time; ties by offset.
    case first, last
}

public struct AggregateSpec: Sendable, Equatable {
    public var function: AggregateFunction
    /// The field aggregated; nil for `count`.
    public var field: String?

    public init(_ function: AggregateFunction, _ field: String? = nil) {
        self.function = function
        self.field = field
    }

    /// The output column: `count`, `sum_price`, `max_price`, …
    public var columnName: String { field.map { "\(function.rawValue)_\($0)" } ?? function.rawValue }
}

public struct WatermarkSpec: Sendable, Equatable {
    /// W = max event time seen in the partition - maxOutOfOrderness.
    public var maxOutOfOrdernessMs: Int64
    /// A partition with no event for this long is left out of the stream's freshness watermark.
    /// It never changes results.
    public var idleTimeoutMs: Int64

    public init(maxOutOfOrdernessMs: Int64 = 2_000, idleTimeoutMs: Int64 = 5_000) {
        self.maxOutOfOrdernessMs = maxOutOfOrdernessMs
        self.idleTimeoutMs = idleTimeoutMs
    }
}

/// What the window operator of one partition computes.
public struct Pipeline: Sendable, Equatable {
    /// `time: kafka_timestamp`: the event time is the Kafka message's timestamp, which a Kafka
    /// source appends to each record as a last field of this name (JSON: a first member).
    public static let kafkaTimestamp = "kafka_timestamp"

    public var schema: Schema
    /// One field, or several (a composite key); never float64.
    public var keyFields: [String]
    public var timeField: String
    public var watermark: WatermarkSpec
    public var window: WindowSpec
    public var aggregates: [AggregateSpec]
    public var format: RecordFormat
    public var partitioner: Partitioner
    /// An event read in a partition its key does not belong to is a dead letter (unless off).
    public var partitionCheck: Bool
    /// Events for which this expression is false or null are dropped (counted, not dead-lettered).
    public var filter: String?
    public var derive: [DerivedField]
    public var dedupe: DedupeSpec?

    public init(schema: Schema, keyFields: [String], timeField: String, watermark: WatermarkSpec,
                window: WindowSpec, aggregates: [AggregateSpec], format: RecordFormat = .plainCSV,
                partitioner: Partitioner? = nil, partitionCheck: Bool = true, filter: String? = nil,
                derive: [DerivedField] = [], dedupe: DedupeSpec? = nil) {
        self.schema = schema
        self.keyFields = keyFields
        self.timeField = timeField
        self.watermark = watermark
        self.window = window
        self.aggregates = aggregates
        self.format = format
        self.partitionCheck = partitionCheck
        self.filter = filter
        self.derive = derive
        self.dedupe = dedupe
        self.partitioner = partitioner ?? Pipeline.defaultPartitioner(schema: schema, keyFields: keyFields)
    }

    public init(schema: Schema, keyField: String, timeField: String, watermark: WatermarkSpec,
                window: WindowSpec, aggregates: [AggregateSpec]) {
        self.init(schema: schema, keyFields: [keyField], timeField: timeField, watermark: watermark,
                  window: window, aggregates: aggregates)
    }

    /// `modulo` for a single integer key, `murmur2` otherwise.
    public static func defaultPartitioner(schema: Schema, keyFields: [String]) -> Partitioner {
        guard keyFields.count == 1, let field = schema.fields.first(where: { $0.name == keyFields[0] }) else { return .murmur2 }
        return field.type == .int64 || field.type == .uint64 ? .modulo : .murmur2
    }

    /// The single key field (the bids shape); the first of a composite key.
    public var keyField: String { keyFields[0] }

    /// The reference job: tumbling 10 s windows per auction, count, sum and max of price.
    public static let bidsTumbling = Pipeline(
        schema: .bids, keyField: "auction", timeField: "event_time_ms", watermark: WatermarkSpec(),
        window: .tumbling(sizeMs: 10_000),
        aggregates: [AggregateSpec(.count), AggregateSpec(.sum, "price"), AggregateSpec(.max, "price")])

    /// True for the shape the engine's integer fast path runs (`PartitionProcessor`): a headerless
    /// CSV of non-null int64/uint64 fields, one uint64 key partitioned by modulo, int64 time, no
    /// filter, derive or dedupe, and count/sum/min/max/avg only. Everything else runs as records.
    public var isIntegerCSV: Bool { integerPathObstacle == nil }

    /// The first part that takes this pipeline off the integer path (and onto the records engine),
    /// with its job-spec path; nil on the integer path.
    public var integerPathObstacle: (path: String, what: String)? {
        if format != .plainCSV { return ("format", "this format") }
        for (i, f) in schema.fields.enumerated() where !(f.type == .int64 || f.type == .uint64) || f.nullable || f.path != nil {
            return ("schema[\(i)]", "field '\(f.name)' (\(f.type.rawValue)\(f.nullable ? ", nullable" : "")\(f.path != nil ? ", with a path" : ""))")
        }
        if keyFields.count != 1 { return ("key", "a composite key") }
        if schema.fields.first(where: { $0.name == keyField })?.type != .uint64 { return ("key", "the key '\(keyField)', which is not uint64,") }
        if partitioner != .modulo { return ("partitioner", "partitioner \(partitioner.rawValue)") }
        if filter != nil { return ("filter", "a filter") }
        if !derive.isEmpty { return ("derive", "a derived field") }
        if dedupe != nil { return ("dedupe", "dedupe") }
        if schema.fields.first(where: { $0.name == timeField })?.type != .int64 { return ("time", "this time field") }
        for (i, a) in aggregates.enumerated() where [.countDistinct, .first, .last].contains(a.function)
            || a.field.map({ f in schema.fields.first { $0.name == f }?.type != .int64 }) == true {
            return ("aggregates[\(i)]", a.columnName)
        }
        return nil
    }

    /// A short text naming everything that shapes the results, e.g.
    /// `auction:uint64,price:int64>=1,… key=auction time=event_time_ms delay=2000 tumbling(10000) count,sum_price`.
    /// A checkpoint store is bound to it, so that a changed job never resumes another job's state.
    /// (The text of jobs of the integer shape is unchanged from before records existed, so that
    /// their stores stay valid; anything else adds its parts.)
    public var fingerprint: String {
        let fields = schema.fields.map { f in
            var text = "\(f.name):\(f.type.rawValue)"
            if f.type == .decimal { text += "(\(f.scale))" }
            if let min = f.minimum { text += ">=\(min)" }
            if let min = f.minimumFloat { text += ">=\(min)" }
            if f.nullable { text += "?" }
            if let path = f.path { text += "@\(path.joined(separator: "."))" }
            return text
        }
        let windowText: String
        switch window {
        case .tumbling(let size): windowText = "tumbling(\(size))"
        case .sliding(let size, let slide): windowText = "sliding(\(size),\(slide))"
        case .session(let gap): windowText = "session(\(gap))"
        }
        var text = "\(fields.joined(separator: ",")) key=\(keyFields.joined(separator: "+")) time=\(timeField) "
            + "delay=\(watermark.maxOutOfOrdernessMs) \(windowText) \(aggregates.map(\.columnName).joined(separator: ","))"
        switch format {
        case .csv(let header, let delimiter):
            if header || delimiter != UInt8(ascii: ",") { text += " csv(header=\(header),delimiter=\(delimiter))" }
        case .json: text += " json"
        }
        if partitioner != Pipeline.defaultPartitioner(schema: schema, keyFields: keyFields) {
            text += " partitioner=\(partitioner.rawValue)"
        }
        if !partitionCheck { text += " partition_check=off" }
        for d in derive { text += " derive(\(d.name)=\(d.expression))" }
        if let filter { text += " filter(\(filter))" }
        if let dedupe { text += " dedupe(\(dedupe.field),\(dedupe.withinMs))" }
        return text
    }

    /// The output columns: `window_start_ms`, the key field(s), then one per aggregate.
    public var outputColumns: [String] { ["window_start_ms"] + keyFields + aggregates.map(\.columnName) }
}
