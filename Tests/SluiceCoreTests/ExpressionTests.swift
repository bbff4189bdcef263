import Testing
@testable import SluiceCore

/// Parses, checks and evaluates `source` over `fields` and `record`.
private func run(_ source: String, _ fields: [(name: String, type: ValueType)] = [],
                 _ record: [Value] = []) throws -> Result<Value, EvaluationError> {
    try TypedExpression(Expression.parse(source), fields: fields).evaluate(record)
}

/// The value, or a test failure naming the evaluation error.
private func value(_ source: String, _ fields: [(name: String, type: ValueType)] = [],
                   _ record: [Value] = []) throws -> Value {
    try run(source, fields, record).get()
}

/// The load-time error's text (`column C: message`), or nil when it loads.
private func loadError(_ source: String, _ fields: [(name: String, type: ValueType)] = []) -> String? {
    do {
        _ = try TypedExpression(Expression.parse(source), fields: fields)
        return nil
    } catch {
        return error.description
    }
}

private func evaluationError(_ source: String, _ fields: [(name: String, type: ValueType)] = [],
                             _ record: [Value] = []) throws -> String? {
    if case .failure(let e) = try run(source, fields, record) { return e.message }
    return nil
}

private let n: [(name: String, type: ValueType)] = [("a", .int64), ("b", .int64), ("c", .int64)]
private let bools: [(name: String, type: ValueType)] = [("p", .bool), ("q", .bool)]

@Suite struct ExpressionParsingTests {
    @Test func precedenceOfArithmetic() throws {
        #expect(try value("1 + 2 * 3") == .int64(7))
        #expect(try value("(1 + 2) * 3") == .int64(9))
        #expect(try value("1 - 2 - 3") == .int64(-4))
        #expect(try value("100 / 10 / 5") == .int64(2))
        #expect(try value("7 - 10 % 4 * 2") == .int64(3))
        #expect(try value("-2 * 3 + -a", n, [.int64(1), .int64(0), .int64(0)]) == .int64(-7))
        #expect(try value("- -5") == .int64(5))
        // + - bind tighter than comparisons on both sides.
        #expect(try value("a = 1 + 2", n, [.int64(3), .null, .null]) == .bool(true))
        #expect(try value("a - 1 < 2 * 2 - 1", n, [.int64(3), .null, .null]) == .bool(true))
    }

    @Test func unaryNotBindsTighterThanComparison() throws {
        // `not p = q` is `(not p) = q`.
        #expect(try value("not p = q", bools, [.bool(true), .bool(false)]) == .bool(true))
        #expect(try value("not (p = q)", bools, [.bool(true), .bool(false)]) == .bool(true))
        #expect(try value("not p = q", bools, [.bool(true), .bool(true)]) == .bool(false))
        #expect(loadError("not a > 1", n) == "column 1: 'a' is int64, expected bool for not")
    }

    @Test func precedenceOfLogic() throws {
        // and binds tighter than or.
        #expect(try value("true or false and false") == .bool(true))
        #expect(try value("(true or false) and false") == .bool(false))
        // comparisons bind tighter than in, in tighter than is null, is null tighter than and.
        #expect(try value("1 = 1 in (true)") == .bool(true))
        #expect(try value("a in (1, 2) is null", n, [.null, .null, .null]) == .bool(true))
        #expect(try value("a is null and b is not null", n, [.null, .int64(1), .null]) == .bool(true))
        #expect(try value("1 + 1 = 2 and 2 * 2 = 4 or false") == .bool(true))
    }

    @Test func keywordsAndFunctionsAreCaseInsensitiveFieldsAreNot() throws {
        #expect(try value("NOT False AND TRUE") == .bool(true))
        #expect(try value("a IS NOT NULL Or a Is Null", n, [.null, .null, .null]) == .bool(true))
        #expect(try value("2 IN (1, 2)") == .bool(true))
        #expect(try value("UPPER('x') = Lower('X') OR NULL IS NULL") == .bool(true))
        #expect(loadError("A = 1", n) == "column 1: unknown field 'A' (fields: a, b, c)")
    }

    @Test func comparisonSynonyms() throws {
        #expect(try value("1 = 1") == .bool(true))
        #expect(try value("1 == 1") == .bool(true))
        #expect(try value("1 <> 2") == .bool(true))
        #expect(try value("1 != 1") == .bool(false))
        #expect(try value("1 < 2 and 2 <= 2 and 3 > 2 and 3 >= 3") == .bool(true))
    }

    @Test func quotedFieldNamesAndFieldNames() throws {
        let fields: [(name: String, type: ValueType)] = [("odd name", .int64), ("and", .int64), ("q\"uote", .int64)]
        #expect(try value("\"odd name\" + \"and\" + \"q\"\"uote\"", fields, [.int64(1), .int64(2), .int64(3)]) == .int64(6))
        let e = try Expression.parse("lower(name) = 'x' and \"odd name\" > length + 1 or name is null")
        #expect(e.fieldNames == ["name", "odd name", "length"])
        // A function's name without parentheses is a field.
        #expect(try value("length + 1", [("length", .int64)], [.int64(4)]) == .int64(5))
    }

    @Test func literals() throws {
        #expect(try value("'it''s'") == .string("it's"))
        #expect(try value("''") == .string(""))
        #expect(try value("12.50") == .decimal(1250, scale: 2))
        #expect(try value("-0.05") == .decimal(-5, scale: 2))
        #expect(try value("-9223372036854775808") == .int64(.min))
        #expect(try value("18446744073709551615") == .uint64(.max))
        #expect(try value("null") == .null)
        #expect(try TypedExpression(Expression.parse("null"), fields: []).type == nil)
        #expect(try TypedExpression(Expression.parse("1.000"), fields: []).type == .decimal(scale: 3))
    }

    @Test func syntaxErrorsNameTheColumnAndWhatWasExpected() {
        #expect(loadError("a >", n) == "column 4: expected an operand, found end of expression")
        #expect(loadError("(a + 1", n) == "column 7: expected ')', found end of expression")
        #expect(loadError("a + * 2", n) == "column 5: expected an operand, found '*'")
        #expect(loadError("a b", n) == "column 3: expected an operator or end of expression, found 'b'")
        #expect(loadError("a = 'x' 'y'", n) == "column 9: expected an operator or end of expression, found string 'y'")
        #expect(loadError("a = 'paid", n) == "column 10: expected ' to close the string opened at column 5, found end of expression")
        #expect(loadError("a # 1", n) == "column 3: expected an operator or end of expression, found '#'")
        #expect(loadError("a in 1", n) == "column 6: expected '(' to open the list, found '1'")
        #expect(loadError("a in (1 2)", n) == "column 9: expected ',' or ')', found '2'")
        #expect(loadError("a is 1", n) == "column 6: expected 'null' or 'not null', found '1'")
        #expect(loadError("a and or b", n) == "column 7: expected an operand, found 'or'")
        #expect(loadError("1. + 2") == "column 3: expected a digit after '1.', found ' '")
        #expect(loadError("99999999999999999999") == "column 1: expected an integer within -9223372036854775808...18446744073709551615, found '99999999999999999999'")
        #expect(loadError("0.1234567890123456789") == "column 1: expected at most 18 fraction digits, found 19 in '0.1234567890123456789'")
    }

    @Test func functionCallErrors() {
        #expect(loadError("foo(a)", n) == "column 1: unknown function 'foo' (functions: abs, coalesce, contains, ends_with, length, lower, round, starts_with, upper)")
        #expect(loadError("1 + lower('a', 'b')") == "column 5: lower takes 1 argument, found 2")
        #expect(loadError("coalesce()") == "column 1: coalesce takes at least 1 argument, found 0")
        #expect(loadError("round(1.5, 1, 2)") == "column 1: round takes 1 or 2 arguments, found 3")
        #expect(loadError("starts_with('a')") == "column 1: starts_with takes 2 arguments, found 1")
        #expect(loadError("round(1.55, a)", n) == "column 13: expected an integer literal 0...18 for round's digits, found a")
        #expect(loadError("round(1.55, 19)") == "column 13: expected an integer literal 0...18 for round's digits, found 19")
    }

    @Test func columnsCountCharactersNotScalars() {
        // 'e\u{301}' is 4 scalars but 3 characters: zz starts at column 7.
        #expect(loadError("'e\u{301}' = zz", n) == "column 7: unknown field 'zz' (fields: a, b, c)")
        #expect(loadError("'日本' = zz", n) == "column 8: unknown field 'zz' (fields: a, b, c)")
    }
}

@Suite struct ExpressionTypeTests {
    @Test func theIssuesExampleComesOutExactly() {
        let fields: [(name: String, type: ValueType)] = [("price", .int64), ("amount", .decimal(scale: 2))]
        #expect(loadError("price > 5 or amount = 'paid'", fields) == "column 14: 'amount' is decimal, cannot compare with 'paid'")
    }

    @Test func typeErrorsNameOperandsAndTheLeftColumn() {
        let fields: [(name: String, type: ValueType)] = [("s", .string), ("i", .int64), ("t", .timestamp), ("p", .bool)]
        #expect(loadError("1 = 1 and s + 1 > 2", fields) == "column 11: 's' is string, cannot add 1")
        #expect(loadError("i < s", fields) == "column 1: 'i' is int64, cannot compare with 's' (string)")
        #expect(loadError("(i + 1) * s", fields) == "column 1: (i + 1) is int64, cannot multiply by 's' (string)")
        #expect(loadError("t + t", fields) == "column 1: 't' is timestamp, cannot add 't' (timestamp)")
        #expect(loadError("t = 5", fields) == "column 1: 't' is timestamp, cannot compare with 5")
        #expect(loadError("i and p", fields) == "column 1: 'i' is int64, expected bool for and")
        #expect(loadError("p or lower(s)", fields) == "column 1: lower(s) is string, expected bool for or")
        #expect(loadError("-s", fields) == "column 1: 's' is string, cannot negate")
        #expect(loadError("i in (1, 'x')", fields) == "column 1: 'i' is int64, cannot compare with 'x'")
        #expect(loadError("p = lower(i)", fields) == "column 11: 'i' is int64, expected string for lower")
        #expect(loadError("abs(s)", fields) == "column 5: 's' is string, expected a number for abs")
        #expect(loadError("coalesce(i, null, s)", fields) == "column 19: 's' is string, cannot mix with 'i' (int64) in coalesce")
    }

    @Test func decimalProductsOverScale18AreRefused() {
        #expect(loadError("0.000000001 * 0.0000000001")
            == "column 1: 0.000000001 is decimal with scale 9, cannot multiply by 0.0000000001 with scale 10: the product's scale 19 exceeds 18")
        #expect(loadError("0.000000001 * 0.000000001") == nil)
    }

    @Test func resultTypes() throws {
        let fields: [(name: String, type: ValueType)] = [
            ("i", .int64), ("u", .uint64), ("f", .float64), ("d", .decimal(scale: 2)), ("e", .decimal(scale: 16)),
            ("t", .timestamp), ("s", .string),
        ]
        func type(_ source: String) throws -> ValueType? { try TypedExpression(Expression.parse(source), fields: fields).type }
        #expect(try type("i + i") == .int64)
        #expect(try type("u + u") == .uint64)
        #expect(try type("u + i") == .int64)
        #expect(try type("-u") == .int64)
        #expect(try type("d + 1.5") == .decimal(scale: 2))
        #expect(try type("d - 1.505") == .decimal(scale: 3))
        #expect(try type("d * 1.5") == .decimal(scale: 3))
        #expect(try type("d * i") == .decimal(scale: 2))
        #expect(try type("d / 3") == .decimal(scale: 6))
        #expect(try type("e / d") == .decimal(scale: 18))
        #expect(try type("d % 0.001") == .decimal(scale: 3))
        #expect(try type("d + f") == .float64)
        #expect(try type("i * f") == .float64)
        #expect(try type("t - t") == .int64)
        #expect(try type("t + 1000") == .timestamp)
        #expect(try type("1000 + t") == .timestamp)
        #expect(try type("t - u") == .timestamp)
        #expect(try type("t + null") == .timestamp)
        #expect(try type("i = d and f < u and s >= 'a' and t > t") == .bool)
        #expect(try type("round(d)") == .decimal(scale: 0))
        #expect(try type("round(d, 4)") == .decimal(scale: 4))
        #expect(try type("round(f, 2)") == .float64)
        #expect(try type("round(i)") == .int64)
        #expect(try type("abs(u)") == .uint64)
        #expect(try type("length(s)") == .int64)
        #expect(try type("coalesce(i, d, null)") == .decimal(scale: 2))
        #expect(try type("coalesce(i, u)") == .int64)
        #expect(try type("coalesce(d, e)") == .decimal(scale: 16))
        #expect(try type("coalesce(d, f)") == .float64)
        #expect(try type("coalesce(null, null)") == nil)
        #expect(try type("null + i") == .int64)
        #expect(try type("-null") == nil)
    }
}

@Suite struct ExpressionEvaluationTests {
    private let all: [(name: String, type: ValueType)] = [
        ("i", .int64), ("u", .uint64), ("f", .float64), ("d", .decimal(scale: 2)), ("t", .timestamp),
        ("s", .string), ("p", .bool),
    ]
    private var nulls: [Value] { Array(repeating: .null, count: 7) }

    @Test func everyOperatorAndFunctionIsNullOnANullOperand() throws {
        for source in [
            "i + 1", "1 - i", "i * 2", "i / 2", "i % 2", "-i", "u + 1", "f * 2.5", "d / 3", "d % 2", "t - t", "t + 5",
            "i = 1", "i <> 1", "i < 1", "1 <= i", "i > d", "f >= 1", "s = 'a'", "s < 'b'", "p = true", "t > t",
            "not p", "i in (1, 2)", "i not in (1, 2)",
            "lower(s)", "upper(s)", "length(s)", "round(d)", "round(d, 1)", "round(f)", "abs(i)", "abs(d)",
            "starts_with(s, 'a')", "ends_with('a', s)", "contains(s, s)", "coalesce(i, null)", "null = null", "null + 1",
        ] {
            #expect(try value(source, all, nulls) == .null, "\(source)")
        }
        #expect(try value("i is null", all, nulls) == .bool(true))
        #expect(try value("i is not null", all, nulls) == .bool(false))
        #expect(try value("null is null") == .bool(true))
    }

    @Test func kleeneLogic() throws {
        let cases: [(Value, Value, and: Value, or: Value)] = [
            (.bool(true), .bool(true), .bool(true), .bool(true)),
            (.bool(true), .bool(false), .bool(false), .bool(true)),
            (.bool(false), .bool(false), .bool(false), .bool(false)),
            (.bool(true), .null, .null, .bool(true)),
            (.bool(false), .null, .bool(false), .null),
            (.null, .bool(true), .null, .bool(true)),
            (.null, .bool(false), .bool(false), .null),
            (.null, .null, .null, .null),
        ]
        for (x, y, and, or) in cases {
            #expect(try value("p and q", bools, [x, y]) == and, "\(x) and \(y)")
            #expect(try value("p or q", bools, [x, y]) == or, "\(x) or \(y)")
        }
        #expect(try value("not p", bools, [.null, .null]) == .null)
    }

    @Test func andAndOrStopWhenTheLeftDecides() throws {
        #expect(try value("a <> 0 and b / a > 1", n, [.int64(0), .int64(5), .null]) == .bool(false))
        #expect(try value("a = 0 or b / a > 1", n, [.int64(0), .int64(5), .null]) == .bool(true))
        #expect(try evaluationError("a = 0 and b / a > 1", n, [.int64(0), .int64(5), .null]) == "division by zero: b / a")
        // A null left operand does not decide: the right one is evaluated.
        #expect(try evaluationError("c = 0 and b / a > 1", n, [.int64(0), .int64(5), .null]) == "division by zero: b / a")
    }

    @Test func errorsInEvaluatedOperandsWinOverNulls() throws {
        // Both operands of arithmetic are evaluated: the right one's error beats the left's null.
        #expect(try evaluationError("c + a / b", n, [.int64(1), .int64(0), .null]) == "division by zero: a / b")
        #expect(try evaluationError("c = a / b", n, [.int64(1), .int64(0), .null]) == "division by zero: a / b")
        // The leftmost error is the one reported.
        #expect(try evaluationError("a / b + a % b", n, [.int64(1), .int64(0), .null]) == "division by zero: a / b")
        // in does not evaluate its list when x is null, nor past the first match.
        #expect(try value("c in (a / b)", n, [.int64(1), .int64(0), .null]) == .null)
        #expect(try value("a in (1, a / b)", n, [.int64(1), .int64(0), .null]) == .bool(true))
        #expect(try evaluationError("a in (2, a / b)", n, [.int64(1), .int64(0), .null]) == "division by zero: a / b")
    }

    @Test func inListsFollowSQL() throws {
        #expect(try value("a in (1, 2, 3)", n, [.int64(2), .null, .null]) == .bool(true))
        #expect(try value("a in (1, 3)", n, [.int64(2), .null, .null]) == .bool(false))
        #expect(try value("a in (1, null)", n, [.int64(2), .null, .null]) == .null)
        #expect(try value("a in (null, 2)", n, [.int64(2), .null, .null]) == .bool(true))
        #expect(try value("a in (1, 2)", n, [.null, .null, .null]) == .null)
        #expect(try value("a not in (1, 3)", n, [.int64(2), .null, .null]) == .bool(true))
        #expect(try value("a not in (1, null)", n, [.int64(2), .null, .null]) == .null)
        #expect(try value("a in (b, c + 1)", n, [.int64(2), .int64(5), .int64(1)]) == .bool(true))
        #expect(try value("a in (1.0, 2.50)", n, [.int64(1), .null, .null]) == .bool(true))
        #expect(try value("'x' in ('a', 'x')") == .bool(true))
    }

    @Test func int64ArithmeticIsCheckedAndTruncates() throws {
        #expect(try value("7 / 2") == .int64(3))
        #expect(try value("-7 / 2") == .int64(-3))
        #expect(try value("7 / -2") == .int64(-3))
        #expect(try value("-7 % 3") == .int64(-1))
        #expect(try value("7 % -3") == .int64(1))
        let r: [Value] = [.int64(Int64.max / 10), .int64(0), .int64(-1)]
        #expect(try evaluationError("a * 100", n, r) == "overflow: a * 100")
        #expect(try evaluationError("(a * 100)", n, r) == "overflow: a * 100")
        #expect(try evaluationError("a / b", n, r) == "division by zero: a / b")
        #expect(try evaluationError("a % b", n, r) == "division by zero: a % b")
        #expect(try evaluationError("9223372036854775807 + 1") == "overflow: 9223372036854775807 + 1")
        let min: [Value] = [.int64(.min), .int64(0), .int64(-1)]
        #expect(try evaluationError("a / c", n, min) == "overflow: a / c")
        #expect(try value("a % c", n, min) == .int64(0))
        #expect(try evaluationError("-a", n, min) == "overflow: -a")
        #expect(try evaluationError("abs(a)", n, min) == "overflow: abs(a)")
        #expect(try evaluationError("a - 1", n, min) == "overflow: a - 1")
    }

    @Test func uint64Arithmetic() throws {
        let fields: [(name: String, type: ValueType)] = [("u", .uint64), ("v", .uint64), ("i", .int64)]
        let big: [Value] = [.uint64(UInt64(Int64.max) + 10), .uint64(20), .int64(-30)]
        #expect(try value("u + v", fields, big) == .uint64(UInt64(Int64.max) + 30))
        #expect(try evaluationError("v - u", fields, big) == "overflow: v - u")
        #expect(try value("u + i", fields, big) == .int64(Int64.max - 20))  // exact, then fits int64
        #expect(try evaluationError("u + 1", fields, big) == "overflow: u + 1")
        #expect(try value("v * i", fields, big) == .int64(-600))
        #expect(try value("-v", fields, big) == .int64(-20))
        #expect(try value("u > i and u > 9223372036854775807 and v < 21.5", fields, big) == .bool(true))
        #expect(try evaluationError("v / 0", fields, big) == "division by zero: v / 0")
        #expect(try value("v / 3 + v % 3", fields, big) == .int64(8))  // 3 is an int64: mixed gives int64
        #expect(try value("v / v + v % v", fields, big) == .uint64(1))
    }

    @Test func decimalScalesAndHalfEvenDivision() throws {
        #expect(try value("1.5 + 2.25") == .decimal(375, scale: 2))
        #expect(try value("1.5 - 2") == .decimal(-5, scale: 1))
        #expect(try value("1.5 * 2.25") == .decimal(3375, scale: 3))
        #expect(try value("2 * 1.25") == .decimal(250, scale: 2))
        #expect(try value("1.00 / 3") == .decimal(333_333, scale: 6))
        #expect(try value("2 / 3.0") == .decimal(66667, scale: 5))
        // Ties go to the even neighbour: 1/64 = 0.015625 → 0.01562; 3/64 = 0.046875 → 0.04688.
        #expect(try value("1 / 64.0") == .decimal(1562, scale: 5))
        #expect(try value("3 / 64.0") == .decimal(4688, scale: 5))
        #expect(try value("-1 / 64.0") == .decimal(-1562, scale: 5))
        #expect(try value("-3 / 64.0") == .decimal(-4688, scale: 5))
        // The scale is capped at 18: 5e-18 / 2 = 2.5e-18 → 2e-18.
        #expect(try value("0.000000000000000005 / 2") == .decimal(2, scale: 18))
        #expect(try value("0.000000000000000007 / 2") == .decimal(4, scale: 18))
        #expect(try value("7.5 % 2") == .decimal(15, scale: 1))
        #expect(try value("-7.5 % 2") == .decimal(-15, scale: 1))
        #expect(try value("1.5 = 1.50 and 1.5 < 1.51 and 2 = 2.00 and 2 > 1.99") == .bool(true))
        let fields: [(name: String, type: ValueType)] = [("amount", .decimal(scale: 2)), ("n", .int64)]
        #expect(try evaluationError("amount / n", fields, [.decimal(100, scale: 2), .int64(0)]) == "division by zero: amount / n")
        #expect(try evaluationError("amount % 0.0", fields, [.decimal(100, scale: 2), .int64(0)]) == "division by zero: amount % 0.0")
        #expect(try evaluationError("amount * 100", fields, [.decimal(Int64.max / 10, scale: 2), .int64(0)]) == "overflow: amount * 100")
        #expect(try evaluationError("amount + 0.001", fields, [.decimal(Int64.max / 10 + 1, scale: 2), .int64(0)]) == "overflow: amount + 0.001")
        #expect(try value("amount / n", fields, [.decimal(1000, scale: 2), .int64(8)]) == .decimal(1_250_000, scale: 6))
    }

    @Test func floatsMixWithDecimalsAndRefuseNonFiniteResults() throws {
        let fields: [(name: String, type: ValueType)] = [("f", .float64), ("g", .float64)]
        #expect(try value("f + 1.5", fields, [.float64(1), .float64(0)]) == .float64(2.5))
        #expect(try value("f / 4", fields, [.float64(1), .float64(0)]) == .float64(0.25))
        #expect(try evaluationError("f / g", fields, [.float64(1), .float64(0)]) == "division by zero: f / g")
        #expect(try evaluationError("f % g", fields, [.float64(1), .float64(0)]) == "division by zero: f % g")
        #expect(try evaluationError("f * f", fields, [.float64(1e300), .float64(0)]) == "not a finite number: f * f")
        #expect(try value("f % 2", fields, [.float64(-5.5), .float64(0)]) == .float64(-1.5))
    }

    @Test func numericComparisonsAreExact() throws {
        let fields: [(name: String, type: ValueType)] = [("f", .float64), ("i", .int64), ("u", .uint64)]
        // The double 0.1 is a little more than the decimal 0.1.
        #expect(try value("f = 0.1", fields, [.float64(0.1), .null, .null]) == .bool(false))
        #expect(try value("f > 0.1", fields, [.float64(0.1), .null, .null]) == .bool(true))
        #expect(try value("f = 0.5 and f < 0.51 and f > 0.49", fields, [.float64(0.5), .null, .null]) == .bool(true))
        // 2^53 + 1 is not a double; comparing through a conversion would call these equal.
        #expect(try value("i = f", fields, [.float64(9_007_199_254_740_992), .int64(9_007_199_254_740_993), .null]) == .bool(false))
        #expect(try value("i > f", fields, [.float64(9_007_199_254_740_992), .int64(9_007_199_254_740_993), .null]) == .bool(true))
        #expect(try value("u > f", fields, [.float64(1.8e19), .null, .uint64(.max)]) == .bool(true))
        #expect(try value("u < f", fields, [.float64(1e30), .null, .uint64(.max)]) == .bool(true))
        #expect(try value("i < f", fields, [.float64(-1e-300), .int64(0), .null]) == .bool(false))
        #expect(try value("i > f", fields, [.float64(-1e-300), .int64(0), .null]) == .bool(true))
        #expect(try value("f = -2.25 and -2.25 = f and f < -2.24", fields, [.float64(-2.25), .null, .null]) == .bool(true))
        #expect(try value("u > i", fields, [.null, .int64(-1), .uint64(0)]) == .bool(true))
    }

    @Test func timestamps() throws {
        let fields: [(name: String, type: ValueType)] = [("t", .timestamp), ("s", .timestamp), ("n", .int64)]
        let r: [Value] = [.timestamp(10_000), .timestamp(4_000), .int64(500)]
        #expect(try value("t - s", fields, r) == .int64(6_000))
        #expect(try value("t + n", fields, r) == .timestamp(10_500))
        #expect(try value("n + t", fields, r) == .timestamp(10_500))
        #expect(try value("t - n", fields, r) == .timestamp(9_500))
        #expect(try value("t > s and t - 6000 = s", fields, r) == .bool(true))
        let far: [Value] = [.timestamp(Timestamps.limit), .timestamp(0), .int64(1)]
        #expect(try evaluationError("t + n", fields, far) == "timestamp out of range: t + n")
        #expect(try value("t - n", fields, far) == .timestamp(Timestamps.limit - 1))
    }

    @Test func stringsCompareByteWise() throws {
        let fields: [(name: String, type: ValueType)] = [("s", .string), ("t", .string)]
        let r: [Value] = [.string("e\u{301}"), .string("\u{e9}")]  // decomposed and precomposed é
        #expect(try value("s = t", fields, r) == .bool(false))
        #expect(try value("s <> t", fields, r) == .bool(true))
        #expect(try value("s < t", fields, r) == .bool(true))  // 0x65 < 0xC3
        #expect(try value("s in ('\u{e9}')", fields, r) == .bool(false))
        #expect(try value("s in ('e\u{301}')", fields, r) == .bool(true))
        #expect(try value("starts_with(s, 'e')", fields, r) == .bool(true))
        #expect(try value("starts_with(t, 'e')", fields, r) == .bool(false))
        #expect(try value("contains(t, s)", fields, r) == .bool(false))
        #expect(try value("ends_with(s, '\u{301}')", fields, r) == .bool(true))
        #expect(try value("length(s)", fields, r) == .int64(2))
        #expect(try value("length(t)", fields, r) == .int64(1))
        #expect(try value("'B' < 'a' and 'a' < 'b' and 'ab' > 'a' and '' < 'a'") == .bool(true))
    }

    @Test func stringFunctions() throws {
        #expect(try value("lower('ÀbC')") == .string("àbc"))
        #expect(try value("upper('straße')") == .string("STRASSE"))
        #expect(try value("length('日本語')") == .int64(3))
        #expect(try value("contains('hello', 'll') and contains('hello', '') and not contains('hello', 'lo!')") == .bool(true))
        #expect(try value("starts_with('cust-001', 'cust-') and ends_with('cust-001', '001') and not ends_with('1', '01')") == .bool(true))
    }

    @Test func roundAndAbs() throws {
        #expect(try value("round(2.5)") == .decimal(3, scale: 0))
        #expect(try value("round(-2.5)") == .decimal(-3, scale: 0))
        #expect(try value("round(2.49)") == .decimal(2, scale: 0))
        #expect(try value("round(1.25, 1)") == .decimal(13, scale: 1))
        #expect(try value("round(-1.25, 1)") == .decimal(-13, scale: 1))
        #expect(try value("round(1.5, 3)") == .decimal(1500, scale: 3))
        #expect(try value("round(7)") == .int64(7))
        #expect(try value("round(7, 2)") == .int64(7))
        let fields: [(name: String, type: ValueType)] = [("f", .float64), ("d", .decimal(scale: 0))]
        #expect(try value("round(f)", fields, [.float64(-2.5), .null]) == .float64(-3))
        #expect(try value("round(f, 1)", fields, [.float64(0.25), .null]) == .float64(0.3))
        #expect(try value("round(f, 2)", fields, [.float64(1e300), .null]) == .float64(1e300))
        #expect(try evaluationError("round(d, 2)", fields, [.null, .decimal(Int64.max, scale: 0)]) == "overflow: round(d, 2)")
        #expect(try value("abs(-3) + abs(3)") == .int64(6))
        #expect(try value("abs(-1.50)") == .decimal(150, scale: 2))
        #expect(try value("abs(f)", fields, [.float64(-0.5), .null]) == .float64(0.5))
    }

    @Test func coalesceTakesTheFirstNonNullInTheCommonType() throws {
        let fields: [(name: String, type: ValueType)] = [("i", .int64), ("d", .decimal(scale: 2)), ("u", .uint64)]
        #expect(try value("coalesce(i, d)", fields, [.int64(3), .decimal(1, scale: 2), .null]) == .decimal(300, scale: 2))
        #expect(try value("coalesce(i, d)", fields, [.null, .decimal(1, scale: 2), .null]) == .decimal(1, scale: 2))
        #expect(try value("coalesce(i, d, 0)", fields, [.null, .null, .null]) == .decimal(0, scale: 2))
        #expect(try value("coalesce(i, null)", fields, [.null, .null, .null]) == .null)
        #expect(try evaluationError("coalesce(u, i)", fields, [.null, .null, .uint64(.max)]) == "overflow: coalesce(u, i)")
        // Later arguments are not evaluated once one is not null.
        #expect(try value("coalesce(i, 1 / (i - i))", fields, [.int64(5), .null, .null]) == .int64(5))
        #expect(try value("coalesce('a', 'b')") == .string("a"))
    }

    @Test func constantsAreFoldedAndFailingConstantsFailAtEvaluation() throws {
        let folded = try TypedExpression(Expression.parse("1 + 2 * 3 = 7 and lower('A') = 'a'"), fields: [])
        #expect(folded.constant == .bool(true))
        let failing = try TypedExpression(Expression.parse("1 / 0"), fields: [])
        #expect(failing.constant == nil)
        #expect(failing.evaluate([]) == .failure(EvaluationError(message: "division by zero: 1 / 0")))
        #expect(try value("false and 1 / 0 = 1") == .bool(false))
    }

    @Test func aRecordShorterThanItsFieldsIsAnErrorNotACrash() throws {
        #expect(try evaluationError("c + 1", n, [.int64(1)]) == "the record has 1 values, expected 3")
        #expect(try evaluationError("a + 1", n, [.string("x"), .null, .null]) != nil)
    }
}

@Suite struct ExpressionPropertyTests {
    /// Random int64 arithmetic over three fields, against Int128 reference arithmetic: every
    /// result is either the exact value (when it fits) or the right error.
    @Test func randomInt64ArithmeticMatchesInt128() throws {
        var rng = SplitMix64(seed: 0xE4_9E55_1045)
        let operands: [Int64] = [0, 1, -1, 2, 7, -13, 1000, Int64.max, Int64.min, Int64.max / 3, -4_611_686_018_427_387_904]
        func pick() -> Int64 {
            rng.next() % 3 == 0 ? operands[Int(rng.next() % UInt64(operands.count))] : Int64(bitPattern: rng.next()) >> (rng.next() % 64)
        }
        enum Outcome: Equatable { case value(Int128), overflow, divisionByZero }
        // Builds a random expression text and its reference outcome (errors: leftmost first).
        func generate(_ depth: Int, _ record: [Int64]) -> (String, Outcome) {
            if depth == 0 || rng.next() % 4 == 0 {
                if rng.next() % 2 == 0 {
                    let i = Int(rng.next() % 3)
                    return (["a", "b", "c"][i], .value(Int128(record[i])))
                }
                let v = Int64(rng.next() % 2000) - 1000
                return (v < 0 ? "(\(v))" : "\(v)", .value(Int128(v)))
            }
            let (l, lv) = generate(depth - 1, record)
            let (r, rv) = generate(depth - 1, record)
            let op = ["+", "-", "*", "/", "%"][Int(rng.next() % 5)]
            let text = "(\(l) \(op) \(r))"
            guard case .value(let x) = lv else { return (text, lv) }
            guard case .value(let y) = rv else { return (text, rv) }
            let exact: Int128
            switch op {
            case "+": exact = x + y
            case "-": exact = x - y
            case "*": exact = x * y
            case "/":
                if y == 0 { return (text, .divisionByZero) }
                exact = x / y
            default:
                if y == 0 { return (text, .divisionByZero) }
                exact = x % y
            }
            return (text, exact >= Int128(Int64.min) && exact <= Int128(Int64.max) ? .value(exact) : .overflow)
        }
        var checked = 0
        for _ in 0..<3000 {
            let record = [pick(), pick(), pick()]
            let (text, outcome) = generate(Int(rng.next() % 5) + 1, record)
            let result = try run(text, n, record.map { .int64($0) })
            switch (outcome, result) {
            case (.value(let v), .success(.int64(let got))):
                #expect(Int128(got) == v, "\(text) with \(record)")
            case (.overflow, .failure(let e)):
                #expect(e.message.hasPrefix("overflow: "), "\(text) with \(record): \(e)")
            case (.divisionByZero, .failure(let e)):
                #expect(e.message.hasPrefix("division by zero: "), "\(text) with \(record): \(e)")
            default:
                Issue.record("\(text) with \(record): expected \(outcome), got \(result)")
            }
            checked += 1
        }
        #expect(checked == 3000)
    }

    /// Exact comparison of random decimals and integers with random doubles agrees with a
    /// reference that compares both as exact fractions over a common power of two and ten.
    @Test func randomDecimalVersusFloatComparisonsAreExact() throws {
        var rng = SplitMix64(seed: 0xF10A7)
        let fields: [(name: String, type: ValueType)] = [("d", .decimal(scale: 3)), ("f", .float64)]
        for _ in 0..<2000 {
            let unscaled = Int64(bitPattern: rng.next()) >> (rng.next() % 60 + 3)
            // Doubles near the decimal's value, some exactly equal (multiples of 1/8 are exact).
            let base = Double(unscaled) / 1000
            let f: Double = switch rng.next() % 4 {
            case 0: base
            case 1: base.nextUp
            case 2: Double(unscaled / 125) / 8
            default: base.nextDown
            }
            let got = try value("d < f", fields, [.decimal(unscaled, scale: 3), .float64(f)])
            // Reference: d < f ⟺ unscaled < f × 1000, checked through f's exact binary fraction.
            #expect(got == .bool(referenceLess(unscaled, 3, f)), "\(unscaled)e-3 < \(f)")
        }
    }

    /// The libm-free float helpers agree bit for bit with the standard library's.
    /// Fuzz finding: no bound on nesting, so deep parentheses exhausted the stack. Nesting and the
    /// tree's depth are bounded now; just inside the bounds still parses and evaluates.
    @Test func nestingAndDepthAreBounded() throws {
        let parens = String(repeating: "(", count: 64) + "1" + String(repeating: ")", count: 64)
        #expect(try value(parens) == .int64(1))
        #expect(throws: ExpressionError.self) { try Expression.parse("(" + parens + ")") }
        let chain = Array(repeating: "1", count: 256).joined(separator: " + ")
        #expect(try value(chain) == .int64(256))
        #expect(throws: ExpressionError.self) { try Expression.parse(chain + " + 1") }
        #expect(throws: ExpressionError.self) { try Expression.parse(String(repeating: "-", count: 65) + "1") }
    }

    @Test func floatRemainderAndRoundingMatchTheStandardLibrary() {
        var rng = SplitMix64(seed: 0xF0D)
        func randomDouble() -> Double {
            switch rng.next() % 4 {
            case 0: Double(Int64(bitPattern: rng.next()) >> 40) / 4  // small, often ties
            case 1: Double(bitPattern: rng.next() & 0x7FEF_FFFF_FFFF_FFFF) * (rng.next() % 2 == 0 ? 1 : -1)
            case 2: Double(Int64(bitPattern: rng.next())) / Double(rng.next() % 1000 + 1)
            default: Double(rng.next() % 10) + 0.5 * Double(rng.next() % 3) - 1
            }
        }
        for _ in 0..<5000 {
            let x = randomDouble(), y = randomDouble()
            #expect(NumericOps.roundHalfAway(x).bitPattern == x.rounded(.toNearestOrAwayFromZero).bitPattern, "round \(x)")
            if y != 0 {
                #expect(NumericOps.truncatingRemainder(x, y).bitPattern == x.truncatingRemainder(dividingBy: y).bitPattern, "\(x) % \(y)")
            }
        }
        #expect(NumericOps.roundHalfAway(0.49999999999999994) == 0)
        #expect(NumericOps.roundHalfAway(-0.5) == -1)
        #expect(NumericOps.roundHalfAway(-0.2).sign == .minus)
    }

    /// `unscaled / 10^scale < d`, by scaling both to integers: d = m × 2^e.
    private func referenceLess(_ unscaled: Int64, _ scale: Int, _ d: Double) -> Bool {
        if d == 0 { return unscaled < 0 }
        let exponent = Int(d.exponent) - 52
        let m = Int128(d.significandWidth >= 0 ? (d.significandBitPattern | (1 << 52)) : 0) * (d < 0 ? -1 : 1)
        // unscaled × 2^-e  <  m × 10^scale   (when e < 0), or unscaled < m × 2^e × 10^scale.
        let p = Int128(NumericOps.powers[scale])
        if exponent >= 0 { return Int128(unscaled) < (m << exponent) * p }
        let k = -exponent
        if k > 60 { return Int128(unscaled) < (m * p) >> k || (Int128(unscaled) == (m * p) >> k && (m * p) & ((1 << k) - 1) != 0) }
        return Int128(unscaled) << k < m * p
    }
}
