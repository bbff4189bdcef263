// The aggregate state of one window of a records job, over typed values (docs/DESIGN.md,
// "Aggregates"): SQL null rules, exact int64 and decimal sums that never wrap, float64 sums,
// min/max by type (strings by UTF-8 bytes), exact count_distinct, first/last by event time with
// ties by offset.

/// How one aggregate of the job reads its field and what it keeps.
struct RecordAggregatePlan: Sendable {
    enum Kind: Sendable, Equatable {
        case count
        /// int64 or decimal (unscaled at `scale`): exact, an overflow refuses the event.
        case exactSum(scale: Int?)
        case floatSum
        /// avg of int64 (float64 result) or decimal (`scale` + 4, half-even).
        case exactAverage(scale: Int?)
        case floatAverage
        case min, max
        case countDistinct
        case first, last
    }

    let kind: Kind
    /// Index of the field in the record (schema fields, then derived ones); -1 for count.
    let field: Int
    /// The output column, for overflow reasons.
    let column: String

    static func plans(for pipeline: Pipeline, fields: [(name: String, type: ValueType)]) -> [RecordAggregatePlan] {
        pipeline.aggregates.map { spec in
            let index = spec.field.flatMap { name in fields.firstIndex { $0.name == name } } ?? -1
            let type = index >= 0 ? fields[index].type : nil
            let kind: Kind
            switch spec.function {
            case .count: kind = .count
            case .countDistinct: kind = .countDistinct
            case .min: kind = .min
            case .max: kind = .max
            case .first: kind = .first
            case .last: kind = .last
            case .sum:
                switch type {
                case .float64: kind = .floatSum
                case .decimal(let scale): kind = .exactSum(scale: scale)
                default: kind = .exactSum(scale: nil)
                }
            case .avg:
                switch type {
                case .float64: kind = .floatAverage
                case .decimal(let scale): kind = .exactAverage(scale: scale)
                default: kind = .exactAverage(scale: nil)
                }
            }
            return RecordAggregatePlan(kind: kind, field: index, column: spec.columnName)
        }
    }
}

/// The state of one aggregate of one window.
enum AggregateState: Sendable, Equatable {
    /// count: the window's event count says it all.
    case count
    /// An exact sum (int64, or a decimal's unscaled value) and how many non-null values it holds.
    case exactSum(Int64, n: Int64)
    case floatSum(Double, n: Int64)
    /// The least or greatest non-null value so far; null before the first.
    case extreme(Value)
    case distinct(Set<Value>)
    /// The chosen non-null value with its event time and offset; null value before the first.
    case pick(time: Int64, offset: Int64, value: Value)
}

/// Every aggregate of one window.
struct WindowAggregates: Sendable, Equatable {
    var count: Int64 = 0
    var states: [AggregateState]

    init(plans: [RecordAggregatePlan]) {
        states = plans.map { plan in
            switch plan.kind {
            case .count: .count
            case .exactSum, .exactAverage: .exactSum(0, n: 0)
            case .floatSum, .floatAverage: .floatSum(0, n: 0)
            case .min, .max: .extreme(.null)
            case .countDistinct: .distinct([])
            case .first, .last: .pick(time: 0, offset: 0, value: .null)
            }
        }
    }

    init(count: Int64, states: [AggregateState]) {
        self.count = count
        self.states = states
    }

    /// The exact value an event adds to a sum (an int64, or a decimal rescaled to the field's scale).
    @inline(__always)
    static func exactAddend(_ value: Value, scale: Int?) -> Int64? {
        switch value {
        case .int64(let v): return v
        case .decimal(let v, let s):
            guard let scale, s != scale else { return v }
            return DecimalText.rescale(v, from: s, to: scale)
        case .uint64(let v): return Int64(exactly: v)
        default: return nil
        }
    }

    /// The first aggregate (plan order) whose sum adding `values` would take out of Int64, or whose
    /// decimal average could not be written at its scale + 4; nil when the event fits.
    func overflow(adding values: [Value], plans: [RecordAggregatePlan]) -> Int? {
        for (a, plan) in plans.enumerated() {
            switch plan.kind {
            case .exactSum(let scale), .exactAverage(let scale):
                let value = values[plan.field]
                if value.isNull { continue }
                guard let addend = WindowAggregates.exactAddend(value, scale: scale) else { return a }
                if case .exactAverage(let s?) = plan.kind, !WindowAggregates.averageFits(addend, scale: s) { return a }
                guard case .exactSum(let sum, _) = states[a] else { continue }
                if sum.addingReportingOverflow(addend).overflow { return a }
            default: continue
            }
        }
        return nil
    }

    /// A decimal average lies between the least and greatest value averaged, and is written with
    /// 4 more fraction digits: every value must fit an Int64 at that scale, or the average might not.
    static func averageFits(_ unscaled: Int64, scale: Int) -> Bool {
        !unscaled.multipliedReportingOverflow(by: 10_000).overflow
    }

    /// Adds an event that `overflow(adding:plans:)` accepted.
    mutating func add(_ values: [Value], time: Int64, offset: Int64, plans: [RecordAggregatePlan]) {
        count += 1
        for (a, plan) in plans.enumerated() {
            guard plan.field >= 0 else { continue }
            let value = values[plan.field]
            if value.isNull { continue }
            // Before the switch, whose subject would hold a second reference to the set.
            if plan.kind == .countDistinct { insertDistinct(value, at: a); continue }
            switch (plan.kind, states[a]) {
            case (.exactSum(let scale), .exactSum(let sum, let n)), (.exactAverage(let scale), .exactSum(let sum, let n)):
                states[a] = .exactSum(sum &+ (WindowAggregates.exactAddend(value, scale: scale) ?? 0), n: n + 1)
            case (_, .floatSum(let sum, let n)):
                states[a] = .floatSum(sum + (value.asDouble ?? 0), n: n + 1)
            case (.min, .extreme(let current)):
                if current.isNull || RecordOrder.less(value, current) { states[a] = .extreme(value) }
            case (.max, .extreme(let current)):
                if current.isNull || RecordOrder.less(current, value) { states[a] = .extreme(value) }
            case (.first, .pick(let t, let o, let current)):
                if current.isNull || time < t || (time == t && offset < o) { states[a] = .pick(time: time, offset: offset, value: value) }
            case (.last, .pick(let t, let o, let current)):
                if current.isNull || time > t || (time == t && offset > o) { states[a] = .pick(time: time, offset: offset, value: value) }
            default: break
            }
        }
    }

    /// Inserts into a count_distinct set in place (the set is left uniquely referenced while it grows,
    /// so an insert never copies it).
    private mutating func insertDistinct(_ value: Value, at a: Int) {
        guard case .distinct(var set) = states[a] else { return }
        states[a] = .count
        set.insert(value)
        states[a] = .distinct(set)
    }

    /// The first aggregate whose sum would overflow if `windows` and the event were one (a session
    /// merge), computed exactly in Int128.
    static func overflow(merging windows: [WindowAggregates], adding values: [Value], plans: [RecordAggregatePlan]) -> Int? {
        for (a, plan) in plans.enumerated() {
            switch plan.kind {
            case .exactSum(let scale), .exactAverage(let scale):
                var total = Int128(0)
                for w in windows { if case .exactSum(let s, _) = w.states[a] { total += Int128(s) } }
                let value = values[plan.field]
                if !value.isNull {
                    guard let addend = exactAddend(value, scale: scale) else { return a }
                    if case .exactAverage(let s?) = plan.kind, !averageFits(addend, scale: s) { return a }
                    total += Int128(addend)
                }
                if Int64(exactly: total) == nil { return a }
            default: continue
            }
        }
        return nil
    }

    /// Folds `other` in (a session merge, checked first with `overflow(merging:adding:plans:)`).
    mutating func merge(_ other: WindowAggregates, plans: [RecordAggregatePlan]) {
        count += other.count
        for (a, plan) in plans.enumerated() {
            switch (states[a], other.states[a]) {
            case (.exactSum(let x, let n), .exactSum(let y, let m)): states[a] = .exactSum(x &+ y, n: n + m)
            case (.floatSum(let x, let n), .floatSum(let y, let m)): states[a] = .floatSum(x + y, n: n + m)
            case (.extreme(let x), .extreme(let y)):
                if y.isNull { continue }
                if x.isNull || (plan.kind == .min ? RecordOrder.less(y, x) : RecordOrder.less(x, y)) { states[a] = .extreme(y) }
            case (.distinct(let x), .distinct(let y)): states[a] = .distinct(x.union(y))
            case (.pick(let t, let o, let x), .pick(let u, let p, let y)):
                if y.isNull { continue }
                let better = plan.kind == .first ? (u < t || (u == t && p < o)) : (u > t || (u == t && p > o))
                if x.isNull || better { states[a] = .pick(time: u, offset: p, value: y) }
            default: continue
            }
        }
    }

    /// The output values, one per aggregate.
    func results(plans: [RecordAggregatePlan]) -> [Value] {
        zip(plans, states).map { plan, state in
            switch (plan.kind, state) {
            case (.count, _): return .int64(count)
            case (_, .exactSum(_, 0)), (_, .floatSum(_, 0)): return .null
            case (.exactSum(let scale), .exactSum(let sum, _)):
                return scale.map { .decimal(sum, scale: $0) } ?? .int64(sum)
            case (.exactAverage(let scale), .exactSum(let sum, let n)):
                guard let scale else { return .float64(Double(sum) / Double(n)) }
                return .decimal(WindowAggregates.halfEven(Int128(sum) * 10_000, n), scale: scale + 4)
            case (.floatSum, .floatSum(let sum, _)): return .float64(sum)
            case (.floatAverage, .floatSum(let sum, let n)): return .float64(sum / Double(n))
            case (_, .extreme(let v)): return v
            case (_, .distinct(let set)): return .int64(Int64(set.count))
            case (_, .pick(_, _, let v)): return v
            default: return .null
            }
        }
    }

    /// `numerator / n` rounded half to even (n > 0). The caller guarantees the result fits an Int64
    /// (`averageFits`: the average lies within the values averaged).
    static func halfEven(_ numerator: Int128, _ n: Int64) -> Int64 {
        let d = Int128(n)
        var q = numerator / d
        let r = numerator % d  // same sign as the numerator
        let twice = r.magnitude * 2
        if twice > d.magnitude || (twice == d.magnitude && q % 2 != 0) {
            q += numerator < 0 ? -1 : 1
        }
        return Int64(truncatingIfNeeded: q)
    }
}

/// The one order of typed values for min/max: numbers by value, strings by UTF-8 bytes.
enum RecordOrder {
    static func less(_ a: Value, _ b: Value) -> Bool {
        switch (a, b) {
        case let (.int64(x), .int64(y)): x < y
        case let (.uint64(x), .uint64(y)): x < y
        case let (.float64(x), .float64(y)): x < y
        case let (.timestamp(x), .timestamp(y)): x < y
        case let (.string(x), .string(y)): Value.utf8Less(x, y)
        case let (.bool(x), .bool(y)): !x && y
        case let (.decimal(x, s), .decimal(y, t)):
            s == t ? x < y : Int128(x) * Int128(DecimalText.powers[max(0, t - s)]) < Int128(y) * Int128(DecimalText.powers[max(0, s - t)])
        default: false
        }
    }
}

extension Value {
    /// The value of a number as a Double (float64 aggregates); nil for anything else.
    var asDouble: Double? {
        switch self {
        case .float64(let v): v
        case .int64(let v): Double(v)
        case .uint64(let v): Double(v)
        case .decimal(let v, let s): Double(v) / Double(DecimalText.powers[s])
        default: nil
        }
    }
}
