// The expression language of filters and derived fields (issue 12, item 4): parsing (Lexer,
// Parser, Syntax), type checking against a record's fields (TypeChecker), and evaluation of the
// checked tree (Evaluator, with exact numerics in NumericOps). Pure: no Foundation, no I/O.
// The precise semantics are written down in the design note (briefs/expressions-design.md).

/// A parsed, untyped expression: `status = 'paid' and amount > 10.00`.
public struct Expression: Sendable, Equatable {
    public let source: String
    let root: SyntaxNode
    /// The source's Unicode scalars, which token offsets index.
    let scalars: [Unicode.Scalar]
    /// `columns[i]`: the 1-based Character column of scalar `i` (and one past the end).
    let columns: [Int]

    public static func parse(_ source: String) throws(ExpressionError) -> Expression {
        let scalars = Array(source.unicodeScalars)
        let columns = Self.characterColumns(source, scalarCount: scalars.count)
        let tokens = try Lexer(scalars: scalars, columns: columns).tokens()
        var parser = Parser(tokens: tokens, scalars: scalars, columns: columns)
        let root = try parser.parseWhole()
        return Expression(source: source, root: root, scalars: scalars, columns: columns)
    }

    /// Names of the fields it reads (for dependency order of derived fields).
    public var fieldNames: Set<String> {
        var names = Set<String>()
        root.collectFieldNames(into: &names)
        return names
    }

    /// Equal when the sources are the same UTF-8 bytes (the tree follows from the source).
    public static func == (a: Expression, b: Expression) -> Bool {
        a.source.utf8.elementsEqual(b.source.utf8)
    }

    /// A scalar inside a Character (a combining mark after a quote) gets that Character's column.
    static func characterColumns(_ source: String, scalarCount: Int) -> [Int] {
        var columns: [Int] = []
        columns.reserveCapacity(scalarCount + 1)
        var column = 1
        for character in source {
            for _ in character.unicodeScalars { columns.append(column) }
            column += 1
        }
        columns.append(column)
        return columns
    }

    /// The source text of scalars `start..<end`, as written.
    func text(_ start: Int, _ end: Int) -> String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars[start..<end])
        return String(view)
    }

    func column(_ scalarOffset: Int) -> Int { columns[min(scalarOffset, columns.count - 1)] }
}

/// A syntax or type error, at a 1-based Character column of the source.
public struct ExpressionError: Error, Equatable, CustomStringConvertible {
    public var column: Int
    public var message: String
    public init(column: Int, message: String) {
        self.column = column
        self.message = message
    }
    public var description: String { "column \(column): \(message)" }
}

/// A failure evaluating one record (the engine dead-letters that event with this reason).
public struct EvaluationError: Error, Equatable, CustomStringConvertible {
    public var message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}
