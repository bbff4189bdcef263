// The validated description of a job that the engine runs: schema, key, time, watermark, window,
// aggregates. Built by SluiceJob from YAML; plain values, no behaviour beyond lookups.

/// A numeric field type. Events are records of integers: the engine decodes every field to Int64
/// (a `uint64` is kept as its bit pattern).
public enum FieldType: String, Sendable, Equatable, CaseIterable {
    case int64
    case uint64
}

public struct Field: Sendable, Equatable {
    public var name: String
    public var type: FieldType
    /// The least valid value; a line with a smaller value is malformed (the bid schema: price >= 1).
    public var minimum: Int64?

    public init(name: String, type: FieldType, minimum: Int64? = nil) {
        self.name = name
        self.type = type
        self.minimum = minimum
    }
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
}

public struct AggregateSpec: Sendable, Equatable {
    public var function: AggregateFunction
    /// The int64 field aggregated; nil for `count`.
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
    public var schema: Schema
    public var keyField: String
    public var timeField: String
    public var watermark: WatermarkSpec
    public var window: WindowSpec
    public var aggregates: [AggregateSpec]

    public init(schema: Schema, keyField: String, timeField: String, watermark: WatermarkSpec,
                window: WindowSpec, aggregates: [AggregateSpec]) {
        self.schema = schema
        self.keyField = keyField
        self.timeField = timeField
        self.watermark = watermark
        self.window = window
        self.aggregates = aggregates
    }

    /// The reference job: tumbling 10 s windows per auction, count, sum and max of price.
    public static let bidsTumbling = Pipeline(
        schema: .bids, keyField: "auction", timeField: "event_time_ms", watermark: WatermarkSpec(),
        window: .tumbling(sizeMs: 10_000),
        aggregates: [AggregateSpec(.count), AggregateSpec(.sum, "price"), AggregateSpec(.max, "price")])

    /// A short text naming everything that shapes the results, e.g.
    /// `auction:uint64,price:int64>=1,… key=auction time=event_time_ms delay=2000 tumbling(10000) count,sum_price`.
    /// A checkpoint store is bound to it, so that a changed job never resumes another job's state.
    public var fingerprint: String {
        let fields = schema.fields.map { f in "\(f.name):\(f.type.rawValue)" + (f.minimum.map { ">=\($0)" } ?? "") }
        let windowText: String
        switch window {
        case .tumbling(let size): windowText = "tumbling(\(size))"
        case .sliding(let size, let slide): windowText = "sliding(\(size),\(slide))"
        case .session(let gap): windowText = "session(\(gap))"
        }
        return "\(fields.joined(separator: ",")) key=\(keyField) time=\(timeField) "
            + "delay=\(watermark.maxOutOfOrdernessMs) \(windowText) \(aggregates.map(\.columnName).joined(separator: ","))"
    }

    /// The output columns: `window_start_ms`, the key field, then one per aggregate.
    public var outputColumns: [String] { ["window_start_ms", keyField] + aggregates.map(\.columnName) }
}
