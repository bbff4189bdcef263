// The untyped tree the parser builds. Offsets are Unicode-scalar offsets into the source; the
// Expression maps them to Character columns for messages.

struct SyntaxNode: Sendable {
    let kind: SyntaxKind
    /// The first scalar of the node as written, and one past its last.
    let start: Int
    let end: Int
    /// Levels of the tree from this node down (1 for a leaf), kept as the tree is built, so that
    /// the parser refuses a tree too deep for the recursive checker and evaluator (`Parser.maxDepth`).
    let depth: Int

    init(kind: SyntaxKind, start: Int, end: Int) {
        self.kind = kind
        self.start = start
        self.end = end
        let below: Int
        switch kind {
        case .int64, .uint64, .decimal, .string, .bool, .null, .field: below = 0
        case .negate(let x), .not(let x), .isNull(let x, _): below = x.depth
        case .binary(_, let l, let r): below = max(l.depth, r.depth)
        case .inList(let x, let list, _): below = max(x.depth, list.map(\.depth).max() ?? 0)
        case .call(_, let args): below = args.map(\.depth).max() ?? 0
        }
        depth = 1 + below
    }
}

enum BinaryOperator: Sendable {
    case add, subtract, multiply, divide, remainder
    case equal, notEqual, less, lessOrEqual, greater, greaterOrEqual
    case and, or

    var isComparison: Bool {
        switch self {
        case .equal, .notEqual, .less, .lessOrEqual, .greater, .greaterOrEqual: true
        default: false
        }
    }
}

enum Function: String, Sendable, CaseIterable {
    case coalesce, lower, upper, length, round, abs
    case startsWith = "starts_with", endsWith = "ends_with", contains
}

indirect enum SyntaxKind: Sendable {
    case int64(Int64)
    /// An integer literal above Int64.max.
    case uint64(UInt64)
    case decimal(Int64, scale: Int)
    case string(String)
    case bool(Bool)
    case null
    case field(String)
    case negate(SyntaxNode)
    case not(SyntaxNode)
    case binary(BinaryOperator, SyntaxNode, SyntaxNode)
    case isNull(SyntaxNode, negated: Bool)
    case inList(SyntaxNode, [SyntaxNode], negated: Bool)
    /// `round`'s digits are kept as the literal's value (checked by the parser).
    case call(Function, [SyntaxNode])
}

extension SyntaxNode {
    var isLiteral: Bool {
        switch kind {
        case .int64, .uint64, .decimal, .string, .bool, .null: true
        default: false
        }
    }

    func collectFieldNames(into names: inout Set<String>) {
        switch kind {
        case .int64, .uint64, .decimal, .string, .bool, .null: break
        case .field(let name): names.insert(name)
        case .negate(let x), .not(let x), .isNull(let x, _): x.collectFieldNames(into: &names)
        case .binary(_, let l, let r):
            l.collectFieldNames(into: &names)
            r.collectFieldNames(into: &names)
        case .inList(let x, let list, _):
            x.collectFieldNames(into: &names)
            for e in list { e.collectFieldNames(into: &names) }
        case .call(_, let args):
            for a in args { a.collectFieldNames(into: &names) }
        }
    }
}
