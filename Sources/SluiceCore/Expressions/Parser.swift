// Recursive descent over the tokens, loosest first:
//   or → and → is [not] null → [not] in (…) → comparisons → + - → * / % → unary - and not → primary.
// Keywords and function names are ASCII case-insensitive; field names are not.

struct Parser {
    let tokens: [Token]
    let scalars: [Unicode.Scalar]
    let columns: [Int]
    private var position = 0
    /// Open parentheses, calls, lists and unary operators around the current token.
    private var nesting = 0

    /// Bounds that keep a hostile or runaway expression from exhausting the stack (found by
    /// fuzzing: 1,273 nested parentheses crashed a debug build on a test thread's 512 KiB stack;
    /// enough more crash any build). Nesting is what the parser recurses on; depth is the tree's,
    /// which the type checker and the evaluator recurse on (`a + b + c …` is built by a loop but
    /// is as deep as it is long).
    static let maxNesting = 64
    static let maxDepth = 256

    init(tokens: [Token], scalars: [Unicode.Scalar], columns: [Int]) {
        self.tokens = tokens
        self.scalars = scalars
        self.columns = columns
    }

    mutating func parseWhole() throws(ExpressionError) -> SyntaxNode {
        let node = try parseOr()
        guard current.kind == .end else { throw unexpected("an operator or end of expression") }
        guard node.depth <= Self.maxDepth else {
            throw ExpressionError(column: 1, message: "the expression is nested deeper than \(Self.maxDepth) levels")
        }
        return node
    }

    /// One level of nesting (a parenthesis, a call, a list, a unary operator) around `body`.
    private mutating func nested(_ body: (inout Parser) throws(ExpressionError) -> SyntaxNode) throws(ExpressionError) -> SyntaxNode {
        guard nesting < Self.maxNesting else {
            throw ExpressionError(column: columns[current.start], message:
                "nested deeper than \(Self.maxNesting) parentheses, calls, lists and unary operators")
        }
        nesting += 1
        defer { nesting -= 1 }
        return try body(&self)
    }

    // MARK: Levels

    private mutating func parseOr() throws(ExpressionError) -> SyntaxNode {
        var left = try parseAnd()
        while isKeyword("or") {
            advance()
            let right = try parseAnd()
            left = SyntaxNode(kind: .binary(.or, left, right), start: left.start, end: right.end)
        }
        return left
    }

    private mutating func parseAnd() throws(ExpressionError) -> SyntaxNode {
        var left = try parseNullTest()
        while isKeyword("and") {
            advance()
            let right = try parseNullTest()
            left = SyntaxNode(kind: .binary(.and, left, right), start: left.start, end: right.end)
        }
        return left
    }

    private mutating func parseNullTest() throws(ExpressionError) -> SyntaxNode {
        var operand = try parseIn()
        while isKeyword("is") {
            advance()
            var negated = false
            if isKeyword("not") {
                negated = true
                advance()
            }
            guard isKeyword("null") else { throw unexpected(negated ? "'null'" : "'null' or 'not null'") }
            let end = current.end
            advance()
            operand = SyntaxNode(kind: .isNull(operand, negated: negated), start: operand.start, end: end)
        }
        return operand
    }

    private mutating func parseIn() throws(ExpressionError) -> SyntaxNode {
        var operand = try parseComparison()
        while isKeyword("in") || (isKeyword("not") && isKeyword("in", at: position + 1)) {
            let negated = isKeyword("not")
            advance(negated ? 2 : 1)
            guard isSymbol("(") else { throw unexpected("'(' to open the list") }
            advance()
            var list: [SyntaxNode] = []
            while true {
                list.append(try nested { p throws(ExpressionError) in try p.parseOr() })
                if isSymbol(",") {
                    advance()
                    continue
                }
                guard isSymbol(")") else { throw unexpected("',' or ')'") }
                break
            }
            let end = current.end
            advance()
            operand = SyntaxNode(kind: .inList(operand, list, negated: negated), start: operand.start, end: end)
        }
        return operand
    }

    private mutating func parseComparison() throws(ExpressionError) -> SyntaxNode {
        var left = try parseAdditive()
        while case .symbol(let s) = current.kind, let op = Self.comparisons[s] {
            advance()
            let right = try parseAdditive()
            left = SyntaxNode(kind: .binary(op, left, right), start: left.start, end: right.end)
        }
        return left
    }

    private static let comparisons: [String: BinaryOperator] = [
        "=": .equal, "==": .equal, "!=": .notEqual, "<>": .notEqual,
        "<": .less, "<=": .lessOrEqual, ">": .greater, ">=": .greaterOrEqual,
    ]

    private mutating func parseAdditive() throws(ExpressionError) -> SyntaxNode {
        var left = try parseMultiplicative()
        while true {
            let op: BinaryOperator
            if isSymbol("+") { op = .add } else if isSymbol("-") { op = .subtract } else { return left }
            advance()
            let right = try parseMultiplicative()
            left = SyntaxNode(kind: .binary(op, left, right), start: left.start, end: right.end)
        }
    }

    private mutating func parseMultiplicative() throws(ExpressionError) -> SyntaxNode {
        var left = try parseUnary()
        while true {
            let op: BinaryOperator
            if isSymbol("*") { op = .multiply } else if isSymbol("/") { op = .divide } else if isSymbol("%") {
                op = .remainder
            } else { return left }
            advance()
            let right = try parseUnary()
            left = SyntaxNode(kind: .binary(op, left, right), start: left.start, end: right.end)
        }
    }

    private mutating func parseUnary() throws(ExpressionError) -> SyntaxNode {
        let start = current.start
        if isSymbol("-") {
            advance()
            let operand = try nested { p throws(ExpressionError) in try p.parseUnary() }
            return try negated(operand, start: start)
        }
        if isKeyword("not") {
            advance()
            let operand = try nested { p throws(ExpressionError) in try p.parseUnary() }
            return SyntaxNode(kind: .not(operand), start: start, end: operand.end)
        }
        return try parsePrimary()
    }

    /// `-` before a number literal is part of the literal (so `-9223372036854775808` is an int64).
    private func negated(_ operand: SyntaxNode, start: Int) throws(ExpressionError) -> SyntaxNode {
        var kind = SyntaxKind.negate(operand)
        switch operand.kind {
        case .int64(let v):
            let (n, overflow) = Int64(0).subtractingReportingOverflow(v)
            if !overflow { kind = .int64(n) }
        case .uint64(let m):
            guard m == UInt64(Int64.max) + 1 else {
                throw ExpressionError(column: columns[start], message:
                    "expected an integer within -9223372036854775808...18446744073709551615, found '-\(m)'")
            }
            kind = .int64(.min)
        case .decimal(let v, let scale):
            let (n, overflow) = Int64(0).subtractingReportingOverflow(v)
            if !overflow { kind = .decimal(n, scale: scale) }
        default: break
        }
        return SyntaxNode(kind: kind, start: start, end: operand.end)
    }

    private mutating func parsePrimary() throws(ExpressionError) -> SyntaxNode {
        let token = current
        switch token.kind {
        case .number:
            advance()
            return SyntaxNode(kind: try number(token), start: token.start, end: token.end)
        case .string(let s):
            advance()
            return SyntaxNode(kind: .string(s), start: token.start, end: token.end)
        case .quotedName(let name):
            advance()
            return SyntaxNode(kind: .field(name), start: token.start, end: token.end)
        case .identifier(let name):
            switch Self.lowercasedASCII(name) {
            case "true", "false":
                advance()
                return SyntaxNode(kind: .bool(Self.lowercasedASCII(name) == "true"), start: token.start, end: token.end)
            case "null":
                advance()
                return SyntaxNode(kind: .null, start: token.start, end: token.end)
            case "and", "or", "not", "in", "is":
                throw unexpected("an operand")
            default:
                advance()
                if isSymbol("(") { return try call(name, at: token) }
                return SyntaxNode(kind: .field(name), start: token.start, end: token.end)
            }
        case .symbol("("):
            advance()
            let inner = try nested { p throws(ExpressionError) in try p.parseOr() }
            guard isSymbol(")") else { throw unexpected("')'") }
            let end = current.end
            advance()
            // The parentheses belong to the node, so that its text (in messages) is as written.
            return SyntaxNode(kind: inner.kind, start: token.start, end: end)
        default:
            throw unexpected("an operand")
        }
    }

    private mutating func call(_ name: String, at nameToken: Token) throws(ExpressionError) -> SyntaxNode {
        guard let function = Function(rawValue: Self.lowercasedASCII(name)) else {
            let known = Function.allCases.map(\.rawValue).sorted().joined(separator: ", ")
            throw ExpressionError(column: columns[nameToken.start], message: "unknown function '\(name)' (functions: \(known))")
        }
        advance()  // (
        var args: [SyntaxNode] = []
        if !isSymbol(")") {
            while true {
                args.append(try nested { p throws(ExpressionError) in try p.parseOr() })
                if isSymbol(",") {
                    advance()
                    continue
                }
                guard isSymbol(")") else { throw unexpected("',' or ')'") }
                break
            }
        }
        let end = current.end
        advance()  // )
        let arity: ClosedRange<Int> = switch function {
        case .coalesce: 1...Int.max
        case .round: 1...2
        case .lower, .upper, .length, .abs: 1...1
        case .startsWith, .endsWith, .contains: 2...2
        }
        guard arity.contains(args.count) else {
            let wanted = arity.upperBound == Int.max ? "at least \(arity.lowerBound) argument"
                : arity.lowerBound == arity.upperBound ? "\(arity.lowerBound) argument\(arity.lowerBound == 1 ? "" : "s")"
                : "\(arity.lowerBound) or \(arity.upperBound) arguments"
            throw ExpressionError(column: columns[nameToken.start], message:
                "\(function.rawValue) takes \(wanted), found \(args.count)")
        }
        if function == .round, args.count == 2 {
            guard case .int64(let digits) = args[1].kind, (0...Int64(ValueType.maxScale)).contains(digits) else {
                throw ExpressionError(column: columns[args[1].start], message:
                    "expected an integer literal 0...\(ValueType.maxScale) for round's digits, found \(text(args[1].start, args[1].end))")
            }
        }
        return SyntaxNode(kind: .call(function, args), start: nameToken.start, end: end)
    }

    /// Integer literals up to Int64.max are int64, up to UInt64.max uint64; `d.ddd` is a decimal
    /// with as many fraction digits as written.
    private func number(_ token: Token) throws(ExpressionError) -> SyntaxKind {
        let digits = scalars[token.start..<token.end]
        let written = text(token.start, token.end)
        if let dot = digits.firstIndex(of: ".") {
            let scale = token.end - dot - 1
            guard scale <= ValueType.maxScale else {
                throw ExpressionError(column: columns[token.start], message:
                    "expected at most \(ValueType.maxScale) fraction digits, found \(scale) in '\(written)'")
            }
            switch DecimalText.parse(Array(written.utf8), scale: scale, exponent: false) {
            case .success(let unscaled): return .decimal(unscaled, scale: scale)
            case .failure:
                throw ExpressionError(column: columns[token.start], message:
                    "expected a decimal of at most 18 significant digits, found '\(written)'")
            }
        }
        var value: UInt64 = 0
        for d in digits {
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(UInt64(d.value - 48))
            guard !o1, !o2 else {
                throw ExpressionError(column: columns[token.start], message:
                    "expected an integer within -9223372036854775808...18446744073709551615, found '\(written)'")
            }
            value = s
        }
        return value <= UInt64(Int64.max) ? .int64(Int64(value)) : .uint64(value)
    }

    // MARK: Tokens

    private var current: Token { tokens[position] }

    private mutating func advance(_ count: Int = 1) { position = min(position + count, tokens.count - 1) }

    private func isSymbol(_ s: String) -> Bool { current.kind == .symbol(s) }

    private func isKeyword(_ keyword: String, at index: Int? = nil) -> Bool {
        let i = index ?? position
        guard i < tokens.count, case .identifier(let name) = tokens[i].kind else { return false }
        return Self.lowercasedASCII(name) == keyword
    }

    static func lowercasedASCII(_ s: String) -> String {
        String(String.UnicodeScalarView(s.unicodeScalars.map { c in
            c.value >= 65 && c.value <= 90 ? Unicode.Scalar(c.value + 32) ?? c : c
        }))
    }

    private func text(_ start: Int, _ end: Int) -> String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars[start..<end])
        return String(view)
    }

    private func unexpected(_ expected: String) -> ExpressionError {
        ExpressionError(column: columns[current.start], message: "expected \(expected), found \(describe(current))")
    }

    private func describe(_ token: Token) -> String {
        switch token.kind {
        case .end: "end of expression"
        case .string: "string \(text(token.start, token.end))"
        case .quotedName: text(token.start, token.end)
        default: "'\(text(token.start, token.end))'"
        }
    }
}
