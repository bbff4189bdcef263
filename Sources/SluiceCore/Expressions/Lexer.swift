// Splits an expression's source into tokens. Whitespace is space, tab, CR and LF.

struct Token: Sendable {
    enum Kind: Sendable, Equatable {
        /// Digits with an optional `.digits` fraction; the parser reads the value from the text.
        case number
        /// 'text' with '' for a quote: the unescaped text.
        case string(String)
        /// `[A-Za-z_][A-Za-z0-9_]*`: a keyword, a function or a field.
        case identifier(String)
        /// "text" with "" for a quote: always a field name.
        case quotedName(String)
        /// `+ - * / % ( ) , = == != <> < <= > >=`
        case symbol(String)
        /// A character that starts no token.
        case invalid
        case end
    }
    var kind: Kind
    var start: Int
    var end: Int
}

struct Lexer {
    let scalars: [Unicode.Scalar]
    let columns: [Int]

    func tokens() throws(ExpressionError) -> [Token] {
        var tokens: [Token] = []
        var i = 0
        while true {
            while i < scalars.count, Self.isSpace(scalars[i]) { i += 1 }
            guard i < scalars.count else {
                tokens.append(Token(kind: .end, start: i, end: i))
                return tokens
            }
            let start = i
            let c = scalars[i]
            if Self.isDigit(c) {
                while i < scalars.count, Self.isDigit(scalars[i]) { i += 1 }
                if i < scalars.count, scalars[i] == "." {
                    i += 1
                    guard i < scalars.count, Self.isDigit(scalars[i]) else {
                        throw ExpressionError(column: columns[i], message:
                            "expected a digit after '\(text(start, i))', found \(describe(at: i))")
                    }
                    while i < scalars.count, Self.isDigit(scalars[i]) { i += 1 }
                }
                tokens.append(Token(kind: .number, start: start, end: i))
            } else if Self.isIdentifierStart(c) {
                while i < scalars.count, Self.isIdentifierPart(scalars[i]) { i += 1 }
                tokens.append(Token(kind: .identifier(text(start, i)), start: start, end: i))
            } else if c == "'" || c == "\"" {
                let (content, next) = try quoted(from: i, quote: c)
                i = next
                tokens.append(Token(kind: c == "'" ? .string(content) : .quotedName(content), start: start, end: i))
            } else if let symbol = symbol(at: i) {
                i += symbol.unicodeScalars.count
                tokens.append(Token(kind: .symbol(symbol), start: start, end: i))
            } else {
                tokens.append(Token(kind: .invalid, start: start, end: i + 1))
                i += 1
            }
        }
    }

    /// Reads a quoted run from the opening quote at `i`; a doubled quote stands for one.
    private func quoted(from open: Int, quote: Unicode.Scalar) throws(ExpressionError) -> (String, Int) {
        var content = String.UnicodeScalarView()
        var i = open + 1
        while i < scalars.count {
            if scalars[i] == quote {
                if i + 1 < scalars.count, scalars[i + 1] == quote {
                    content.append(quote)
                    i += 2
                    continue
                }
                return (String(content), i + 1)
            }
            content.append(scalars[i])
            i += 1
        }
        let what = quote == "'" ? "string" : "quoted field name"
        throw ExpressionError(column: columns[scalars.count], message:
            "expected \(quote) to close the \(what) opened at column \(columns[open]), found end of expression")
    }

    private func symbol(at i: Int) -> String? {
        let c = scalars[i]
        let next: Unicode.Scalar? = i + 1 < scalars.count ? scalars[i + 1] : nil
        switch c {
        case "+", "-", "*", "/", "%", "(", ")", ",": return String(c)
        case "=": return next == "=" ? "==" : "="
        case "!": return next == "=" ? "!=" : nil
        case "<":
            if next == "=" { return "<=" }
            if next == ">" { return "<>" }
            return "<"
        case ">": return next == "=" ? ">=" : ">"
        default: return nil
        }
    }

    private func text(_ start: Int, _ end: Int) -> String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars[start..<end])
        return String(view)
    }

    private func describe(at i: Int) -> String {
        i < scalars.count ? "'\(scalars[i])'" : "end of expression"
    }

    static func isSpace(_ c: Unicode.Scalar) -> Bool { c == " " || c == "\t" || c == "\n" || c == "\r" }
    static func isDigit(_ c: Unicode.Scalar) -> Bool { c.value >= 48 && c.value <= 57 }
    static func isIdentifierStart(_ c: Unicode.Scalar) -> Bool {
        (c.value >= 65 && c.value <= 90) || (c.value >= 97 && c.value <= 122) || c == "_"
    }
    static func isIdentifierPart(_ c: Unicode.Scalar) -> Bool { isIdentifierStart(c) || isDigit(c) }
}
