// The records oracle's windows and aggregates: a window keeps the events it holds (in full) and
// computes its row only when it fires, from the list, in the plainest way. Only the exact running
// sums behind the overflow rule are kept as the events arrive.

import SluiceCore

/// One aggregate of a records job: function, the index of its field in `Pipeline.recordFields`
/// (nil for count), the field's type and the output column.
struct RecordAggregatePlan {
    var function: AggregateFunction
    var fieldIndex: Int?
    var fieldType: ValueType?
    var column: String

    /// A sum (of a `sum`, or behind an `avg`) that must stay within Int64 (int64 and decimal fields).
    var hasExactSum: Bool {
        guard function == .sum || function == .avg else { return false }
        switch fieldType {
        case .int64, .decimal: return true
        default: return false
        }
    }
}

/// An event as a window holds it.
struct WindowEvent {
    var offset: Int
    var time: Int64
    var values: [Value]
}

/// The events of one window (or session) of one key, and per aggregate its exact sum so far.
struct RecordWindow {
    var start: Int128
    var end: Int128
    var keyParts: [Value]
    var events: [WindowEvent] = []
    var sums: [Int128]

    init(start: Int128, end: Int128, keyParts: [Value], plans: [RecordAggregatePlan]) {
        self.start = start
        self.end = end
        self.keyParts = keyParts
        sums = Array(repeating: 0, count: plans.count)
    }

    /// The unscaled integer of an int64 or decimal value (0 for null: nulls add nothing).
    static func exact(_ value: Value) -> Int128 {
        switch value {
        case .int64(let v): Int128(v)
        case .decimal(let v, _): Int128(v)
        default: 0
        }
    }

    /// The column of the first exact sum (spec order) that leaves Int64 with `extra` added, or of
    /// the first decimal `avg` whose new value (`event`: the event's summands) could not be written
    /// at the field's scale + 4 (its unscaled value times 10^4 leaves Int64: the average, which
    /// lies between the values averaged, might not fit; docs/DESIGN.md, "The records engine").
    func firstOverflow(adding extra: [Int128], _ plans: [RecordAggregatePlan], averaging event: [Int128]) -> String? {
        for (i, plan) in plans.enumerated() where plan.hasExactSum {
            if plan.function == .avg, case .decimal = plan.fieldType, (event[i] * 10_000).magnitude > UInt128(Int64.max) {
                return plan.column
            }
            let sum = sums[i] + extra[i]
            if sum < Int128(Int64.min) || sum > Int128(Int64.max) { return plan.column }
        }
        return nil
    }

    /// The summands of one event, per aggregate.
    static func summands(_ event: WindowEvent, _ plans: [RecordAggregatePlan]) -> [Int128] {
        plans.map { plan in plan.hasExactSum ? exact(event.values[plan.fieldIndex ?? 0]) : 0 }
    }

    mutating func add(_ event: WindowEvent, _ plans: [RecordAggregatePlan]) {
        let extra = Self.summands(event, plans)
        for i in 0..<plans.count { sums[i] += extra[i] }
        events.append(event)
    }

    /// The union of two sessions of one key.
    mutating func merge(_ other: RecordWindow) {
        start = Swift.min(start, other.start)
        end = Swift.max(end, other.end)
        events += other.events
        for i in 0..<sums.count { sums[i] += other.sums[i] }
    }

    /// The fired row: window start, key parts, then one value per aggregate; with, for each
    /// float64 result column, the sum of the absolute values aggregated (the tolerance basis).
    func output(_ plans: [RecordAggregatePlan]) -> RecordOutput {
        // Offset order: float sums then add in the order the partition holds the events.
        let events = self.events.sorted { $0.offset < $1.offset }
        var values = keyParts
        var bases: [Double?] = keyParts.map { _ in nil }
        for plan in plans {
            let (value, basis) = Self.aggregate(plan, events)
            values.append(value)
            bases.append(basis)
        }
        let row = RecordRow(windowStart: Int64(start), values: values)
        return RecordOutput(row: row, floatBasis: bases)
    }

    static func aggregate(_ plan: RecordAggregatePlan, _ events: [WindowEvent]) -> (Value, Double?) {
        guard let index = plan.fieldIndex else { return (.int64(Int64(events.count)), nil) }
        // SQL: everything but count skips nulls.
        let present = events.filter { !$0.values[index].isNull }
        let floats = present.compactMap { e -> Double? in if case .float64(let v) = e.values[index] { v } else { nil } }
        let resultIsFloat: Bool
        switch Pipeline.resultType(AggregateSpec(plan.function, plan.column), fieldType: plan.fieldType) {
        case .float64: resultIsFloat = true
        default: resultIsFloat = false
        }
        var basis: Double? = nil
        if resultIsFloat {
            // avg of int64 is float64 too: its basis is the sum of the absolute int64 values.
            basis = present.reduce(0.0) { total, e in
                switch e.values[index] {
                case .float64(let v): total + Swift.abs(v)
                case .int64(let v): total + Double(v.magnitude)
                default: total
                }
            }
        }
        if plan.function == .countDistinct {
            return (.int64(Int64(Set(present.map { distinctKey($0.values[index]) }).count)), nil)
        }
        guard !present.isEmpty else { return (.null, basis) }
        switch plan.function {
        case .count, .countDistinct:
            return (.int64(Int64(events.count)), nil)  // handled above; kept for exhaustiveness
        case .sum:
            switch plan.fieldType {
            case .float64:
                return (.float64(floats.reduce(0, +)), basis)
            case .decimal(let scale):
                return (exactValue(present.reduce(Int128(0)) { $0 + exact($1.values[index]) }) { .decimal($0, scale: scale) }, nil)
            default:
                return (exactValue(present.reduce(Int128(0)) { $0 + exact($1.values[index]) }) { .int64($0) }, nil)
            }
        case .avg:
            let n = present.count
            switch plan.fieldType {
            case .float64:
                return (.float64(floats.reduce(0, +) / Double(n)), basis)
            case .decimal(let scale):
                // Exact: sum × 10^4 / n, rounded half to even, at scale + 4.
                let scaled = present.reduce(Int128(0)) { $0 + exact($1.values[index]) } * 10_000
                return (exactValue(halfEven(scaled, Int128(n))) { .decimal($0, scale: scale + 4) }, nil)
            default:
                let sum = present.reduce(Int128(0)) { $0 + exact($1.values[index]) }
                // The overflow rule keeps the sum within Int64; Double of that Int64, as a column holds it.
                guard let exactSum = Int64(exactly: sum) else { return (.string("overflow: \(sum)/\(n)"), basis) }
                return (.float64(Double(exactSum) / Double(n)), basis)
            }
        case .min, .max:
            var best = present[0].values[index]
            for e in present.dropFirst() {
                let v = e.values[index]
                let less = lessThan(v, best)
                if plan.function == .min ? less : lessThan(best, v) { best = v }
            }
            return (best, basis)
        case .first:
            var best = present[0]
            for e in present.dropFirst() where e.time < best.time || (e.time == best.time && e.offset < best.offset) { best = e }
            return (best.values[index], basis)
        case .last:
            var best = present[0]
            for e in present.dropFirst() where e.time > best.time || (e.time == best.time && e.offset > best.offset) { best = e }
            return (best.values[index], basis)
        }
    }

    /// An exact result as the column's Int64-backed value; a result outside Int64 (which the
    /// overflow rule should prevent) becomes a text that can never match a sink's value.
    static func exactValue(_ v: Int128, _ make: (Int64) -> Value) -> Value {
        guard let small = Int64(exactly: v) else { return .string("overflow: \(v)") }
        return make(small)
    }

    /// a / b rounded to the nearest integer, ties to the even one (b > 0).
    static func halfEven(_ a: Int128, _ b: Int128) -> Int128 {
        let q = a / b  // truncated toward zero
        let r = a % b  // sign of a
        let twice = (r < 0 ? -r : r) * 2
        if twice < b { return q }
        let away = a < 0 ? q - 1 : q + 1
        if twice > b { return away }
        return q % 2 == 0 ? q : away
    }

    /// The value order of min and max: numbers by value, strings by UTF-8 bytes, false < true.
    static func lessThan(_ a: Value, _ b: Value) -> Bool {
        switch (a, b) {
        case let (.int64(x), .int64(y)): x < y
        case let (.uint64(x), .uint64(y)): x < y
        case let (.float64(x), .float64(y)): x < y
        case let (.timestamp(x), .timestamp(y)): x < y
        case let (.decimal(x, _), .decimal(y, _)): x < y  // one field: one scale
        case let (.string(x), .string(y)): Array(x.utf8).lexicographicallyPrecedes(Array(y.utf8))
        case let (.bool(x), .bool(y)): !x && y
        default: false
        }
    }

    /// Equality for count_distinct, as bytes: strings by their UTF-8 (no normalization); -0.0 is 0.
    static func distinctKey(_ v: Value) -> [UInt8] {
        switch v {
        case .string(let s): [1] + Array(s.utf8)
        case .float64(let d): [2] + Array(String((d == 0 ? 0.0 : d).bitPattern).utf8)
        default: [3] + Array(RecordText.text(v).utf8)
        }
    }
}
