// Checks a parsed expression against a record's fields and builds the evaluable Node tree:
// resolves names to indices (by UTF-8 bytes), gives every node a type, refuses what cannot be
// typed with the column and a message, and folds constant subtrees.

/// An expression checked against a record's fields, ready to evaluate per event.
public struct TypedExpression: Sendable {
    /// nil only when the value is always null without a type (a bare `null` literal, or an
    /// operation whose operands are all such nulls, like `-null`).
    public let type: ValueType?
    let root: Node
    private let compiled: Evaluator.Compiled

    /// `fields[i]` describes `record[i]` at evaluation time.
    public init(_ expression: Expression, fields: [(name: String, type: ValueType)]) throws(ExpressionError) {
        var checker = TypeChecker(expression: expression, fields: fields)
        let (root, type) = try checker.check(expression.root)
        self.root = root
        self.type = type
        self.compiled = Evaluator(sites: checker.sites, fieldCount: fields.count).compile(root)
    }

    public func evaluate(_ record: [Value]) -> Result<Value, EvaluationError> {
        do throws(EvaluationError) {
            return .success(try compiled(record))
        } catch {
            return .failure(error)
        }
    }

    /// The folded value when the expression reads no field (for tests and the job loader).
    var constant: Value? { root.constantValue }
}

struct TypeChecker {
    let expression: Expression
    let fields: [(name: String, type: ValueType)]
    /// Texts of the operations that can fail, for EvaluationError messages.
    private(set) var sites: [String] = []

    init(expression: Expression, fields: [(name: String, type: ValueType)]) {
        self.expression = expression
        self.fields = fields
    }

    mutating func check(_ syntax: SyntaxNode) throws(ExpressionError) -> (Node, ValueType?) {
        switch syntax.kind {
        case .int64(let v): return (.constant(.int64(v)), .int64)
        case .uint64(let v): return (.constant(.uint64(v)), .uint64)
        case .decimal(let v, let scale): return (.constant(.decimal(v, scale: scale)), .decimal(scale: scale))
        case .string(let s): return (.constant(.string(s)), .string)
        case .bool(let b): return (.constant(.bool(b)), .bool)
        case .null: return (.constant(.null), nil)
        case .field(let name):
            guard let index = fields.firstIndex(where: { $0.name.utf8.elementsEqual(name.utf8) }) else {
                let known = fields.isEmpty ? "no fields" : "fields: " + fields.map(\.name).joined(separator: ", ")
                throw error(at: syntax, "unknown field '\(name)' (\(known))")
            }
            return (.field(index), fields[index].type)
        case .negate(let operand):
            let (node, type) = try check(operand)
            let result: ValueType?
            switch type {
            case nil: result = nil
            case .int64?, .uint64?: result = .int64
            case .decimal?, .float64?: result = type
            case let t?: throw error(at: syntax, "\(subject(operand)) is \(t), cannot negate")
            }
            let at = site(syntax)  // before fold, which reads the sites
            return fold(.negate(node, site: at), result)
        case .not(let operand):
            let (node, type) = try check(operand)
            if let t = type, t != .bool { throw error(at: syntax, "\(subject(operand)) is \(t), expected bool for not") }
            return fold(.not(node), .bool)
        case .binary(let op, let left, let right):
            return try binary(op, left, right, syntax)
        case .isNull(let operand, let negated):
            let (node, _) = try check(operand)
            return fold(.isNull(node, negated: negated), .bool)
        case .inList(let operand, let list, let negated):
            let (node, type) = try check(operand)
            var elements: [Node] = []
            for element in list {
                let (e, t) = try check(element)
                guard Self.comparable(type, t) else {
                    throw error(at: operand, "\(subject(operand)) is \(describe(type)), cannot compare with \(object(element, t))")
                }
                elements.append(e)
            }
            return fold(.inList(node, elements, negated: negated), .bool)
        case .call(let function, let args):
            return try call(function, args, syntax)
        }
    }

    // MARK: Operators

    private mutating func binary(_ op: BinaryOperator, _ left: SyntaxNode, _ right: SyntaxNode,
                                 _ syntax: SyntaxNode) throws(ExpressionError) -> (Node, ValueType?) {
        let (l, lt) = try check(left)
        let (r, rt) = try check(right)
        switch op {
        case .and, .or:
            for (side, t) in [(left, lt), (right, rt)] {
                if let t, t != .bool {
                    throw error(at: left, "\(subject(side)) is \(t), expected bool for \(op == .and ? "and" : "or")")
                }
            }
            return fold(op == .and ? .and(l, r) : .or(l, r), .bool)
        case .equal, .notEqual, .less, .lessOrEqual, .greater, .greaterOrEqual:
            guard Self.comparable(lt, rt) else {
                throw error(at: left, "\(subject(left)) is \(describe(lt)), cannot compare with \(object(right, rt))")
            }
            let cmp: ComparisonOperator = switch op {
            case .equal: .equal
            case .notEqual: .notEqual
            case .less: .less
            case .lessOrEqual: .lessOrEqual
            case .greater: .greater
            default: .greaterOrEqual
            }
            return fold(.compare(cmp, l, r), .bool)
        case .add, .subtract, .multiply, .divide, .remainder:
            let arith: ArithmeticOperator = switch op {
            case .add: .add
            case .subtract: .subtract
            case .multiply: .multiply
            case .divide: .divide
            default: .remainder
            }
            let (kind, type) = try arithmeticType(arith, lt, rt, left, right)
            let at = site(syntax)  // before fold, which reads the sites
            return fold(.arithmetic(arith, kind, l, r, site: at), type)
        }
    }

    /// The kind and result type of `lt op rt`; a null literal takes the other side's type
    /// (an integer beside a timestamp under `+`).
    private func arithmeticType(_ op: ArithmeticOperator, _ lt: ValueType?, _ rt: ValueType?,
                                _ left: SyntaxNode, _ right: SyntaxNode) throws(ExpressionError) -> (ArithmeticKind, ValueType?) {
        let refuse = { () -> ExpressionError in
            let verb = switch op {
            case .add: "add"
            case .subtract: "subtract"
            case .multiply: "multiply by"
            case .divide: "divide by"
            case .remainder: "take the remainder by"
            }
            return error(at: left, "\(subject(left)) is \(describe(lt)), cannot \(verb) \(object(right, rt))")
        }
        let a: ValueType, b: ValueType
        switch (lt, rt) {
        case (nil, nil): return (.int64, nil)
        case (nil, let t?): a = (t == .timestamp && op == .add) ? .int64 : t; b = t
        case (let t?, nil): a = t; b = (t == .timestamp && op == .add) ? .int64 : t
        case let (x?, y?): a = x; b = y
        }
        if a == .timestamp || b == .timestamp {
            switch (a, b, op) {
            case (.timestamp, .timestamp, .subtract): return (.timestampDifference, .int64)
            case (.timestamp, .int64, .add), (.timestamp, .uint64, .add),
                 (.timestamp, .int64, .subtract), (.timestamp, .uint64, .subtract),
                 (.int64, .timestamp, .add), (.uint64, .timestamp, .add):
                return (.timestampOffset, .timestamp)
            default: throw refuse()
            }
        }
        guard a.isNumeric, b.isNumeric else { throw refuse() }
        if a == .float64 || b == .float64 { return (.float64, .float64) }
        let s = Self.scale(a), t = Self.scale(b)
        if case .decimal = a {} else if case .decimal = b {} else {
            switch (a, b) {
            case (.int64, .int64): return (.int64, .int64)
            case (.uint64, .uint64): return (.uint64, .uint64)
            default: return (.mixedInteger, .int64)
            }
        }
        let scale: Int
        switch op {
        case .add, .subtract, .remainder: scale = max(s, t)
        case .multiply:
            scale = s + t
            guard scale <= ValueType.maxScale else {
                throw error(at: left, "\(subject(left)) is decimal with scale \(s), cannot multiply by \(object(right, rt))"
                    + " with scale \(t): the product's scale \(scale) exceeds \(ValueType.maxScale)")
            }
        case .divide: scale = min(max(s, t) + 4, ValueType.maxScale)
        }
        return (.decimal(scale: scale), .decimal(scale: scale))
    }

    static func scale(_ t: ValueType) -> Int {
        if case .decimal(let s) = t { s } else { 0 }
    }

    /// Numerics with each other, and otherwise only like with like; a null literal with anything.
    static func comparable(_ a: ValueType?, _ b: ValueType?) -> Bool {
        guard let a, let b else { return true }
        if a.isNumeric && b.isNumeric { return true }
        switch (a, b) {
        case (.string, .string), (.bool, .bool), (.timestamp, .timestamp): return true
        default: return false
        }
    }

    // MARK: Functions

    private mutating func call(_ function: Function, _ args: [SyntaxNode],
                               _ syntax: SyntaxNode) throws(ExpressionError) -> (Node, ValueType?) {
        var nodes: [Node] = []
        var types: [ValueType?] = []
        for a in args {
            let (n, t) = try check(a)
            nodes.append(n)
            types.append(t)
        }
        func expect(_ i: Int, _ wanted: String, _ ok: (ValueType) -> Bool) throws(ExpressionError) {
            if let t = types[i], !ok(t) {
                throw error(at: args[i], "\(subject(args[i])) is \(t), expected \(wanted) for \(function.rawValue)")
            }
        }
        let isString = { (t: ValueType) in t == .string }
        switch function {
        case .lower, .upper, .length:
            try expect(0, "string", isString)
            let node: Node = function == .lower ? .lower(nodes[0]) : function == .upper ? .upper(nodes[0]) : .length(nodes[0])
            return fold(node, function == .length ? .int64 : .string)
        case .startsWith, .endsWith, .contains:
            try expect(0, "string", isString)
            try expect(1, "string", isString)
            let node: Node = switch function {
            case .startsWith: .startsWith(nodes[0], nodes[1])
            case .endsWith: .endsWith(nodes[0], nodes[1])
            default: .contains(nodes[0], nodes[1])
            }
            return fold(node, .bool)
        case .abs:
            try expect(0, "a number", \.isNumeric)
            let at = site(syntax)  // before fold, which reads the sites
            return fold(.abs(nodes[0], site: at), types[0])
        case .round:
            try expect(0, "a number", \.isNumeric)
            var digits = 0
            if args.count == 2, case .int64(let n) = args[1].kind { digits = Int(n) }  // checked by the parser
            let type: ValueType? = if case .decimal? = types[0] { .decimal(scale: digits) } else { types[0] }
            let at = site(syntax)  // before fold, which reads the sites
            return fold(.round(nodes[0], digits: digits, site: at), type)
        case .coalesce:
            var target: ValueType? = nil
            for (i, t) in types.enumerated() {
                guard let t else { continue }
                guard let unified = Self.unify(target, t) else {
                    let first = types.firstIndex { $0 != nil } ?? 0
                    throw error(at: args[i], "\(subject(args[i])) is \(t), cannot mix with \(object(args[first], types[first])) in coalesce")
                }
                target = unified
            }
            let at = site(syntax)  // before fold, which reads the sites
            return fold(.coalesce(nodes, target: target, site: at), target)
        }
    }

    /// The one type two coalesce arguments share: like with like, numerics promoted as in
    /// arithmetic (float64 over decimal over integers; decimals to the larger scale; int64 and
    /// uint64 to int64).
    static func unify(_ a: ValueType?, _ b: ValueType) -> ValueType? {
        guard let a else { return b }
        if a == b { return a }
        guard a.isNumeric, b.isNumeric else { return nil }
        if a == .float64 || b == .float64 { return .float64 }
        switch (a, b) {
        case (.decimal, _), (_, .decimal): return .decimal(scale: max(scale(a), scale(b)))
        default: return .int64
        }
    }

    // MARK: Helpers

    /// Evaluates a node whose operands are all constants now; one that fails is left to fail at
    /// evaluation, so that folding never changes what an expression does.
    private func fold(_ node: Node, _ type: ValueType?) -> (Node, ValueType?) {
        guard Self.operandsAreConstant(node) else { return (node, type) }
        let evaluator = Evaluator(sites: sites, fieldCount: 0)
        do throws(EvaluationError) {
            return (.constant(try evaluator.evaluate(node, [])), type)
        } catch {
            return (node, type)
        }
    }

    private static func operandsAreConstant(_ node: Node) -> Bool {
        switch node {
        case .constant: true
        case .field: false
        case .negate(let x, _), .not(let x), .isNull(let x, _), .lower(let x), .upper(let x), .length(let x),
             .round(let x, _, _), .abs(let x, _):
            x.constantValue != nil
        case .arithmetic(_, _, let l, let r, _), .compare(_, let l, let r), .and(let l, let r), .or(let l, let r),
             .startsWith(let l, let r), .endsWith(let l, let r), .contains(let l, let r):
            l.constantValue != nil && r.constantValue != nil
        case .inList(let x, let list, _):
            x.constantValue != nil && list.allSatisfy { $0.constantValue != nil }
        case .coalesce(let args, _, _):
            args.allSatisfy { $0.constantValue != nil }
        }
    }

    private mutating func site(_ syntax: SyntaxNode) -> Int {
        sites.append(Self.trimmedParentheses(expression.text(syntax.start, syntax.end)))
        return sites.count - 1
    }

    /// An operation's text without the parentheses around all of it: `(a + b)` → `a + b`.
    static func trimmedParentheses(_ text: String) -> String {
        var scalars = Array(text.unicodeScalars)
        while scalars.first == "(", scalars.last == ")", enclosesAll(scalars) {
            scalars = Array(scalars.dropFirst().dropLast())
            while let f = scalars.first, Lexer.isSpace(f) { scalars.removeFirst() }
            while let l = scalars.last, Lexer.isSpace(l) { scalars.removeLast() }
        }
        return String(String.UnicodeScalarView(scalars))
    }

    /// Whether the opening parenthesis at 0 closes at the end (quotes skipped).
    private static func enclosesAll(_ s: [Unicode.Scalar]) -> Bool {
        var depth = 0
        var quote: Unicode.Scalar? = nil
        for (i, c) in s.enumerated() {
            if let q = quote {
                if c == q { quote = nil }  // a doubled quote reopens at once: same effect
                continue
            }
            if c == "'" || c == "\"" { quote = c; continue }
            if c == "(" { depth += 1 }
            if c == ")" {
                depth -= 1
                if depth == 0 { return i == s.count - 1 }
            }
        }
        return false
    }

    private func error(at syntax: SyntaxNode, _ message: String) -> ExpressionError {
        ExpressionError(column: expression.column(syntax.start), message: message)
    }

    /// A node as the subject of a message: a field as `'name'`, anything else as written.
    private func subject(_ syntax: SyntaxNode) -> String {
        if case .field(let name) = syntax.kind { return "'\(name)'" }
        return expression.text(syntax.start, syntax.end)
    }

    /// A node as the object of a message: literals by their text, others with their type.
    private func object(_ syntax: SyntaxNode, _ type: ValueType?) -> String {
        syntax.isLiteral ? expression.text(syntax.start, syntax.end) : "\(subject(syntax)) (\(describe(type)))"
    }

    private func describe(_ type: ValueType?) -> String { type.map(\.description) ?? "null" }
}
