// The checked tree that TypedExpression evaluates: field names resolved to indices, literals and
// constant subtrees folded to values, each operation tagged with how its operands combine.

enum ArithmeticOperator: Sendable {
    case add, subtract, multiply, divide, remainder
}

/// How an arithmetic node combines its operands (decided from their types at load).
enum ArithmeticKind: Sendable {
    /// int64 with int64, checked.
    case int64
    /// uint64 with uint64, checked (below zero is an overflow).
    case uint64
    /// int64 with uint64: exact, the result must fit int64.
    case mixedInteger
    /// Integers and decimals, at least one decimal: exact, the result at this scale.
    case decimal(scale: Int)
    case float64
    /// timestamp ± integer, or integer + timestamp: a timestamp within ±Timestamps.limit.
    case timestampOffset
    /// timestamp − timestamp: int64 milliseconds.
    case timestampDifference
}

enum ComparisonOperator: Sendable {
    case equal, notEqual, less, lessOrEqual, greater, greaterOrEqual

    @inline(__always)
    func holds(_ order: Int) -> Bool {
        switch self {
        case .equal: order == 0
        case .notEqual: order != 0
        case .less: order < 0
        case .lessOrEqual: order <= 0
        case .greater: order > 0
        case .greaterOrEqual: order >= 0
        }
    }
}

indirect enum Node: Sendable {
    case constant(Value)
    case field(Int)
    /// `site` indexes the texts used in evaluation errors ("overflow: -x").
    case negate(Node, site: Int)
    case not(Node)
    case arithmetic(ArithmeticOperator, ArithmeticKind, Node, Node, site: Int)
    case compare(ComparisonOperator, Node, Node)
    case and(Node, Node)
    case or(Node, Node)
    case isNull(Node, negated: Bool)
    case inList(Node, [Node], negated: Bool)
    /// Arguments converted to `target` (nil: all of them are null literals).
    case coalesce([Node], target: ValueType?, site: Int)
    case lower(Node)
    case upper(Node)
    case length(Node)
    /// `round(x)` has digits 0 (an integer; scale 0 for decimals).
    case round(Node, digits: Int, site: Int)
    case abs(Node, site: Int)
    case startsWith(Node, Node)
    case endsWith(Node, Node)
    case contains(Node, Node)

    var constantValue: Value? {
        if case .constant(let v) = self { v } else { nil }
    }
}
