import SluiceCore
import Yams

/// The job spec's words for records: `format`, `csv`, composite `key`, `partitioner`,
/// `partition_check`, `filter`, `derive`, `dedupe`. Expressions are parsed and type-checked here, so
/// that a bad one is refused when the job loads, with its column.
extension SpecReader {
    func format(_ top: [String: Node]) throws -> RecordFormat {
        let name = try top["format"].map { try yaml.string($0, path: "format") } ?? "csv"
        switch name {
        case "json":
            if top["csv"] != nil { throw JobSpecError(path: "csv", message: "CSV options with `format: json`; remove them") }
            return .json
        case "csv":
            guard let node = top["csv"] else { return .plainCSV }
            let map = try yaml.mapping(node, path: "csv", allowed: ["header", "delimiter"])
            let header = try map["header"].map { try bool($0, path: "csv.header") } ?? false
            var delimiter = UInt8(ascii: ",")
            if let d = map["delimiter"] {
                guard case .scalar(let scalar) = d else {
                    throw JobSpecError(path: "csv.delimiter", message: "expected one character such as \",\" or \";\"")
                }
                let text = scalar.string == "\\t" ? "\t" : scalar.string
                guard text.utf8.count == 1, let byte = text.utf8.first, byte != 34, byte != 10, byte != 13 else {
                    throw JobSpecError(path: "csv.delimiter", message: "expected one ASCII character other than a quote or a line end, got '\(scalar.string)'")
                }
                delimiter = byte
            }
            return .csv(header: header, delimiter: delimiter)
        default:
            throw JobSpecError(path: "format", message: "unknown format '\(name)'; expected csv or json")
        }
    }

    /// `key: customer` or `key: [customer, region]`.
    func keyFields(_ node: Node) throws -> [String] {
        if case .sequence(let items) = node {
            guard !items.isEmpty else { throw JobSpecError(path: "key", message: "expected a field or a non-empty list of fields") }
            return try items.enumerated().map { i, item in try yaml.string(item, path: "key[\(i)]") }
        }
        return [try yaml.string(node, path: "key")]
    }

    func partitioner(_ node: Node?, keys: [String], fields: [(name: String, type: ValueType)]) throws -> Partitioner {
        let integerKey = keys.count == 1 && fields.first { $0.name == keys[0] }.map { $0.type == .int64 || $0.type == .uint64 } == true
        guard let node else { return integerKey ? .modulo : .murmur2 }
        let name = try yaml.string(node, path: "partitioner")
        guard let partitioner = Partitioner(rawValue: name) else {
            throw JobSpecError(path: "partitioner", message: "unknown partitioner '\(name)'; expected murmur2, consistent_random or modulo")
        }
        if partitioner == .modulo, !integerKey {
            throw JobSpecError(path: "partitioner", message: "modulo needs a single int64 or uint64 key; use murmur2 for \(keys.count > 1 ? "a composite key" : "the key '\(keys[0])'")")
        }
        return partitioner
    }

    /// `on`/`off` (also `true`/`false`).
    func onOff(_ node: Node, path: String) throws -> Bool {
        switch try yaml.string(node, path: path) {
        case "on", "true": return true
        case "off", "false": return false
        case let other: throw JobSpecError(path: path, message: "expected on or off, got '\(other)'")
        }
    }

    func bool(_ node: Node, path: String) throws -> Bool {
        switch try yaml.string(node, path: path) {
        case "true": return true
        case "false": return false
        case let other: throw JobSpecError(path: path, message: "expected true or false, got '\(other)'")
        }
    }

    /// Parses and type-checks an expression against `fields`; its text is what the pipeline keeps.
    func expression(_ node: Node, path: String, fields: [(name: String, type: ValueType)], expecting: ValueType?) throws -> String {
        let text = try yaml.string(node, path: path)
        let typed: TypedExpression
        do {
            typed = try TypedExpression(try Expression.parse(text), fields: fields)
        } catch {
            throw JobSpecError(path: path, message: "\(error)")
        }
        if let expecting, let type = typed.type, type != expecting {
            throw JobSpecError(path: path, message: "column 1: the expression is \(type); expected \(expecting)")
        }
        return text
    }

    /// `derive: [{name: N, expr: "…"}]`: each may use the schema's fields and the ones derived before it.
    func derive(_ node: Node?, schema: Schema) throws -> [(field: DerivedField, type: ValueType)] {
        guard let node else { return [] }
        guard case .sequence(let items) = node else {
            throw JobSpecError(path: "derive", message: "expected a list such as `- {name: amount_cents, expr: \"amount * 100\"}`")
        }
        var fields = schema.fields.map { (name: $0.name, type: $0.valueType) }
        var result: [(field: DerivedField, type: ValueType)] = []
        for (i, item) in items.enumerated() {
            let path = "derive[\(i)]"
            let map = try yaml.mapping(item, path: path, allowed: ["name", "expr"])
            guard let nameNode = map["name"] else { throw JobSpecError(path: "\(path).name", message: "missing") }
            let name = try identifier(nameNode, path: "\(path).name")
            guard !fields.contains(where: { $0.name == name }) else {
                throw JobSpecError(path: "\(path).name", message: "'\(name)' is already a field; choose another name")
            }
            guard let exprNode = map["expr"] else { throw JobSpecError(path: "\(path).expr", message: "missing; expected an expression such as \"amount * 100\"") }
            let text = try yaml.string(exprNode, path: "\(path).expr")
            let typed: TypedExpression
            do {
                typed = try TypedExpression(try Expression.parse(text), fields: fields)
            } catch {
                throw JobSpecError(path: "\(path).expr", message: "\(error)")
            }
            guard let type = typed.type else {
                throw JobSpecError(path: "\(path).expr", message: "column 1: a derived field needs a type; a bare null has none")
            }
            result.append((DerivedField(name: name, expression: text), type))
            fields.append((name, type))
        }
        return result
    }

    func dedupe(_ node: Node, fields: [(name: String, type: ValueType)]) throws -> DedupeSpec {
        let map = try yaml.mapping(node, path: "dedupe", allowed: ["field", "within_ms"])
        guard let fieldNode = map["field"] else { throw JobSpecError(path: "dedupe.field", message: "missing; expected the field whose repeated values are duplicates, such as order_id") }
        let field = try yaml.string(fieldNode, path: "dedupe.field")
        guard let declared = fields.first(where: { $0.name == field }) else {
            throw JobSpecError(path: "dedupe.field", message: "no field '\(field)'; expected one of \(fields.map(\.name).joined(separator: ", "))")
        }
        if declared.type == .float64 {
            throw JobSpecError(path: "dedupe.field", message: "'\(field)' is float64; deduplicate on an id of another type")
        }
        guard let withinNode = map["within_ms"] else { throw JobSpecError(path: "dedupe.within_ms", message: "missing; expected how long a repeat counts as a duplicate, in ms") }
        return DedupeSpec(field: field, withinMs: try nonNegative(withinNode, path: "dedupe.within_ms"))
    }
}
