// Compiles a checked Node tree to closures and evaluates them on one record. Operands are evaluated left to right and every
// evaluated operand's error propagates; `and`, `or`, `coalesce` and `in` stop early as the design
// note says. Only string results allocate.

struct Evaluator: Sendable {
    /// Texts of the operations that can fail, indexed by the nodes' `site`.
    let sites: [String]
    let fieldCount: Int

    /// One node compiled to a closure over the record: no dispatch on node kinds per event.
    typealias Compiled = @Sendable ([Value]) throws(EvaluationError) -> Value

    func evaluate(_ node: Node, _ record: [Value]) throws(EvaluationError) -> Value {
        try compile(node)(record)
    }

    func compile(_ node: Node) -> Compiled {
        switch node {
        case .constant(let v):
            return { _ in v }
        case .field(let i):
            let count = fieldCount
            return { record throws(EvaluationError) in
                guard i < record.count else {
                    throw EvaluationError(message: "the record has \(record.count) values, expected \(count)")
                }
                return record[i]
            }
        case .negate(let x, let site):
            let cx = compile(x)
            return { record throws(EvaluationError) in try self.negate(cx(record), site) }
        case .not(let x):
            let cx = compile(x)
            return { record throws(EvaluationError) in
                switch try cx(record) {
                case .bool(let b): return .bool(!b)
                case .null: return .null
                default: throw self.mismatch
                }
            }
        case .arithmetic(let op, let kind, let l, let r, let site):
            return arithmetic(op, kind, operand(l), operand(r), site)
        case .compare(let op, let l, let r):
            let cl = operand(l), cr = operand(r)
            return { record throws(EvaluationError) in
                let a = try cl.load(record, self)
                let b = try cr.load(record, self)
                if case .int64(let x) = a, case .int64(let y) = b { return .bool(op.holds(x < y ? -1 : (x > y ? 1 : 0))) }
                if a.isNull || b.isNull { return .null }
                guard let order = Self.order(a, b) else { throw self.mismatch }
                return .bool(op.holds(order))
            }
        case .and(let l, let r):
            let cl = compile(l), cr = compile(r)
            return { record throws(EvaluationError) in
                let a = try cl(record)
                if case .bool(false) = a { return .bool(false) }
                let b = try cr(record)
                switch (a, b) {
                case (_, .bool(false)): return .bool(false)
                case (.bool(true), .bool(true)): return .bool(true)
                case (.bool, .null), (.null, .null), (.null, .bool): return .null
                default: throw self.mismatch
                }
            }
        case .or(let l, let r):
            let cl = compile(l), cr = compile(r)
            return { record throws(EvaluationError) in
                let a = try cl(record)
                if case .bool(true) = a { return .bool(true) }
                let b = try cr(record)
                switch (a, b) {
                case (_, .bool(true)): return .bool(true)
                case (.bool(false), .bool(false)): return .bool(false)
                case (.bool, .null), (.null, .null), (.null, .bool): return .null
                default: throw self.mismatch
                }
            }
        case .isNull(let x, let negated):
            let cx = compile(x)
            return { record throws(EvaluationError) in .bool(try cx(record).isNull != negated) }
        case .inList(let x, let list, let negated):
            let cx = compile(x)
            let elements = list.map { compile($0) }
            return { record throws(EvaluationError) in
                let v = try cx(record)
                if v.isNull { return .null }
                var sawNull = false
                for element in elements {
                    let e = try element(record)
                    if e.isNull {
                        sawNull = true
                        continue
                    }
                    guard let order = Self.order(v, e) else { throw self.mismatch }
                    if order == 0 { return .bool(!negated) }
                }
                return sawNull ? .null : .bool(negated)
            }
        case .coalesce(let args, let target, let site):
            let compiled = args.map { compile($0) }
            return { record throws(EvaluationError) in
                for arg in compiled {
                    let v = try arg(record)
                    if !v.isNull { return try self.convert(v, to: target, site) }
                }
                return .null
            }
        case .lower(let x):
            return string(compile(x)) { s in .string(s.lowercased()) }
        case .upper(let x):
            return string(compile(x)) { s in .string(s.uppercased()) }
        case .length(let x):
            return string(compile(x)) { s in .int64(Int64(s.unicodeScalars.count)) }
        case .round(let x, let digits, let site):
            let cx = compile(x)
            return { record throws(EvaluationError) in try self.round(cx(record), digits, site) }
        case .abs(let x, let site):
            let cx = compile(x)
            return { record throws(EvaluationError) in try self.absolute(cx(record), site) }
        case .startsWith(let l, let r):
            return strings(compile(l), compile(r)) { s, p in s.utf8.starts(with: p.utf8) }
        case .endsWith(let l, let r):
            return strings(compile(l), compile(r)) { s, p in NumericOps.endsWithUTF8(s, p) }
        case .contains(let l, let r):
            return strings(compile(l), compile(r)) { s, p in NumericOps.containsUTF8(s, p) }
        }
    }

    /// An operand of a comparison or an arithmetic node: a field or a constant is read in place,
    /// saving a closure call on the commonest shapes (`amount > 10.00`, `a * 2`).
    enum Operand: Sendable {
        case field(Int)
        case constant(Value)
        case compiled(Compiled)

        @inline(__always)
        func load(_ record: [Value], _ evaluator: Evaluator) throws(EvaluationError) -> Value {
            switch self {
            case .field(let i):
                guard i < record.count else {
                    throw EvaluationError(message: "the record has \(record.count) values, expected \(evaluator.fieldCount)")
                }
                return record[i]
            case .constant(let v): return v
            case .compiled(let f): return try f(record)
            }
        }
    }

    private func operand(_ node: Node) -> Operand {
        switch node {
        case .field(let i): .field(i)
        case .constant(let v): .constant(v)
        default: .compiled(compile(node))
        }
    }

    private func string(_ cx: @escaping Compiled, _ f: @escaping @Sendable (String) -> Value) -> Compiled {
        { record throws(EvaluationError) in
            switch try cx(record) {
            case .string(let s): return f(s)
            case .null: return .null
            default: throw self.mismatch
            }
        }
    }

    private func strings(_ cl: @escaping Compiled, _ cr: @escaping Compiled,
                         _ test: @escaping @Sendable (String, String) -> Bool) -> Compiled {
        { record throws(EvaluationError) in
            let a = try cl(record)
            let b = try cr(record)
            switch (a, b) {
            case let (.string(s), .string(p)): return .bool(test(s, p))
            case (.null, .string), (.string, .null), (.null, .null): return .null
            default: throw self.mismatch
            }
        }
    }

    /// int64 with int64 gets closures of its own (the common case); the rest share one.
    private func arithmetic(_ op: ArithmeticOperator, _ kind: ArithmeticKind, _ cl: Operand,
                            _ cr: Operand, _ site: Int) -> Compiled {
        if case .int64 = kind, op != .divide, op != .remainder {
            let apply: @Sendable (Int64, Int64) -> (Int64, Bool) = switch op {
            case .add: { $0.addingReportingOverflow($1) }
            case .subtract: { $0.subtractingReportingOverflow($1) }
            default: { $0.multipliedReportingOverflow(by: $1) }
            }
            return { record throws(EvaluationError) in
                let a = try cl.load(record, self)
                let b = try cr.load(record, self)
                if case .int64(let x) = a, case .int64(let y) = b {
                    let (v, overflow) = apply(x, y)
                    if overflow { throw self.failure("overflow", site) }
                    return .int64(v)
                }
                if a.isNull || b.isNull { return .null }
                throw self.mismatch
            }
        }
        return { record throws(EvaluationError) in
            let a = try cl.load(record, self)
            let b = try cr.load(record, self)
            if a.isNull || b.isNull { return .null }
            return try self.arithmetic(op, kind, a, b, site)
        }
    }

    // MARK: Arithmetic

    private func arithmetic(_ op: ArithmeticOperator, _ kind: ArithmeticKind, _ a: Value, _ b: Value,
                            _ site: Int) throws(EvaluationError) -> Value {
        switch kind {
        case .int64:
            guard case .int64(let x) = a, case .int64(let y) = b else { throw mismatch }
            let (v, overflow): (Int64, Bool)
            switch op {
            case .add: (v, overflow) = x.addingReportingOverflow(y)
            case .subtract: (v, overflow) = x.subtractingReportingOverflow(y)
            case .multiply: (v, overflow) = x.multipliedReportingOverflow(by: y)
            case .divide:
                guard y != 0 else { throw failure("division by zero", site) }
                (v, overflow) = x.dividedReportingOverflow(by: y)
            case .remainder:
                guard y != 0 else { throw failure("division by zero", site) }
                // Int64.min % -1 is 0: Swift reports it as an overflow, mathematically it is not.
                (v, overflow) = (y == -1 ? 0 : x % y, false)
            }
            if overflow { throw failure("overflow", site) }
            return .int64(v)
        case .uint64:
            guard case .uint64(let x) = a, case .uint64(let y) = b else { throw mismatch }
            let (v, overflow): (UInt64, Bool)
            switch op {
            case .add: (v, overflow) = x.addingReportingOverflow(y)
            case .subtract: (v, overflow) = x.subtractingReportingOverflow(y)
            case .multiply: (v, overflow) = x.multipliedReportingOverflow(by: y)
            case .divide:
                guard y != 0 else { throw failure("division by zero", site) }
                (v, overflow) = (x / y, false)
            case .remainder:
                guard y != 0 else { throw failure("division by zero", site) }
                (v, overflow) = (x % y, false)
            }
            if overflow { throw failure("overflow", site) }
            return .uint64(v)
        case .mixedInteger:
            guard let (x, _) = NumericOps.exact(a), let (y, _) = NumericOps.exact(b) else { throw mismatch }
            let v: Int128
            switch op {
            case .add: v = x + y
            case .subtract: v = x - y
            case .multiply:
                let (p, overflow) = x.multipliedReportingOverflow(by: y)
                if overflow { throw failure("overflow", site) }
                v = p
            case .divide:
                guard y != 0 else { throw failure("division by zero", site) }
                v = x / y
            case .remainder:
                guard y != 0 else { throw failure("division by zero", site) }
                v = x % y
            }
            guard let r = NumericOps.int64(v) else { throw failure("overflow", site) }
            return .int64(r)
        case .decimal(let scale):
            guard let (x, s) = NumericOps.exact(a), let (y, t) = NumericOps.exact(b) else { throw mismatch }
            let v: Int128?
            switch op {
            case .add, .subtract, .remainder:
                guard let p = NumericOps.rescale(x, from: s, to: scale),
                      let q = NumericOps.rescale(y, from: t, to: scale) else { throw mismatch }
                switch op {
                case .add: v = p + q
                case .subtract: v = p - q
                default:
                    guard q != 0 else { throw failure("division by zero", site) }
                    v = p % q
                }
            case .multiply:
                let (p, overflow) = x.multipliedReportingOverflow(by: y)
                v = overflow ? nil : NumericOps.rescale(p, from: s + t, to: scale)
            case .divide:
                guard y != 0 else { throw failure("division by zero", site) }
                let exponent = scale - s + t
                guard exponent >= 0 else { throw mismatch }
                v = NumericOps.divideHalfEven(x, y, exponent: exponent)
            }
            guard let v, let r = NumericOps.int64(v) else { throw failure("overflow", site) }
            return .decimal(r, scale: scale)
        case .float64:
            guard let x = NumericOps.double(a), let y = NumericOps.double(b) else { throw mismatch }
            let v: Double
            switch op {
            case .add: v = x + y
            case .subtract: v = x - y
            case .multiply: v = x * y
            case .divide:
                guard y != 0 else { throw failure("division by zero", site) }
                v = x / y
            case .remainder:
                guard y != 0 else { throw failure("division by zero", site) }
                v = NumericOps.truncatingRemainder(x, y)
            }
            guard v.isFinite else { throw failure("not a finite number", site) }
            return .float64(v)
        case .timestampOffset:
            let t: Int64, n: Int128
            switch (a, b) {
            case (.timestamp(let x), let other):
                guard case let (y, 0)? = NumericOps.exact(other) else { throw mismatch }
                (t, n) = (x, op == .subtract ? -y : y)
            case (let other, .timestamp(let y)):
                guard case let (x, 0)? = NumericOps.exact(other) else { throw mismatch }
                (t, n) = (y, x)
            default: throw mismatch
            }
            let v = Int128(t) + n
            guard v >= -Int128(Timestamps.limit), v <= Int128(Timestamps.limit) else {
                throw failure("timestamp out of range", site)
            }
            return .timestamp(Int64(v))
        case .timestampDifference:
            guard case .timestamp(let x) = a, case .timestamp(let y) = b else { throw mismatch }
            let (v, overflow) = x.subtractingReportingOverflow(y)
            if overflow { throw failure("overflow", site) }
            return .int64(v)
        }
    }

    private func negate(_ v: Value, _ site: Int) throws(EvaluationError) -> Value {
        switch v {
        case .null: return .null
        case .int64(let x):
            let (r, overflow) = Int64(0).subtractingReportingOverflow(x)
            if overflow { throw failure("overflow", site) }
            return .int64(r)
        case .uint64(let x):
            guard let r = NumericOps.int64(-Int128(x)) else { throw failure("overflow", site) }
            return .int64(r)
        case .decimal(let x, let scale):
            let (r, overflow) = Int64(0).subtractingReportingOverflow(x)
            if overflow { throw failure("overflow", site) }
            return .decimal(r, scale: scale)
        case .float64(let d): return .float64(-d)
        default: throw mismatch
        }
    }

    private func absolute(_ v: Value, _ site: Int) throws(EvaluationError) -> Value {
        switch v {
        case .null, .uint64: return v
        case .int64(let x):
            guard x != .min else { throw failure("overflow", site) }
            return .int64(Swift.abs(x))
        case .decimal(let x, let scale):
            guard x != .min else { throw failure("overflow", site) }
            return .decimal(Swift.abs(x), scale: scale)
        case .float64(let d): return .float64(Swift.abs(d))
        default: throw mismatch
        }
    }

    /// Half away from zero. A float64 is rounded as `(x × 10^n).rounded() / 10^n` (x itself when
    /// x × 10^n is not finite).
    private func round(_ v: Value, _ digits: Int, _ site: Int) throws(EvaluationError) -> Value {
        switch v {
        case .null, .int64, .uint64: return v
        case .decimal(let x, let scale):
            guard let r = NumericOps.roundHalfAway(Int128(x), from: scale, to: digits), let u = NumericOps.int64(r) else {
                throw failure("overflow", site)
            }
            return .decimal(u, scale: digits)
        case .float64(let d):
            if digits == 0 { return .float64(NumericOps.roundHalfAway(d)) }
            let p = NumericOps.doublePowers[digits]
            let scaled = d * p
            guard scaled.isFinite else { return v }
            return .float64(NumericOps.roundHalfAway(scaled) / p)
        default: throw mismatch
        }
    }

    /// A coalesce argument in the arguments' common type.
    private func convert(_ v: Value, to target: ValueType?, _ site: Int) throws(EvaluationError) -> Value {
        switch (target, v) {
        case (.int64?, .uint64(let x)):
            guard x <= UInt64(Int64.max) else { throw failure("overflow", site) }
            return .int64(Int64(x))
        case (.decimal(let scale)?, _):
            guard let (x, s) = NumericOps.exact(v) else { throw mismatch }
            if s == scale, case .decimal = v { return v }
            guard let r = NumericOps.rescale(x, from: s, to: scale), let u = NumericOps.int64(r) else {
                throw failure("overflow", site)
            }
            return .decimal(u, scale: scale)
        case (.float64?, _):
            guard let d = NumericOps.double(v) else { throw mismatch }
            return .float64(d)
        default:
            return v
        }
    }

    // MARK: Order

    /// The three-way order of two non-null values of comparable types; nil when they are not.
    static func order(_ a: Value, _ b: Value) -> Int? {
        switch (a, b) {
        case let (.int64(x), .int64(y)): return x < y ? -1 : (x > y ? 1 : 0)
        case let (.string(x), .string(y)): return NumericOps.compareUTF8(x, y)
        case let (.bool(x), .bool(y)): return x == y ? 0 : (x ? 1 : -1)
        case let (.timestamp(x), .timestamp(y)): return x < y ? -1 : (x > y ? 1 : 0)
        case let (.float64(x), .float64(y)): return x < y ? -1 : (x > y ? 1 : 0)
        case (.float64(let d), _):
            guard let (x, s) = NumericOps.exact(b) else { return nil }
            return -NumericOps.compare(x, s, d)
        case (_, .float64(let d)):
            guard let (x, s) = NumericOps.exact(a) else { return nil }
            return NumericOps.compare(x, s, d)
        default:
            guard let (x, s) = NumericOps.exact(a), let (y, t) = NumericOps.exact(b) else { return nil }
            return NumericOps.compare(x, s, y, t)
        }
    }

    // MARK: Errors

    private func failure(_ problem: String, _ site: Int) -> EvaluationError {
        EvaluationError(message: "\(problem): \(sites[site])")
    }

    /// A record value that does not have its field's declared type (the caller's bug, not the
    /// event's): an error rather than a crash.
    private var mismatch: EvaluationError {
        EvaluationError(message: "a record value does not have the type its field was declared with")
    }
}
