import Foundation
import Yams

/// Walks a YAML tree by hand so that every error carries the path of the offending field
/// (`window.size_ms`, `faults[2].target`). One reader for the job spec and the chaos suites: each
/// passes the error it throws (`JobSpecError`, `SuiteError`), so users see their own kind of
/// message, and each keeps the rules of its own fields.
public struct YAMLReader: Sendable {
    private let error: @Sendable (_ path: String, _ message: String) -> any Error

    public init(error: @escaping @Sendable (_ path: String, _ message: String) -> any Error) {
        self.error = error
    }

    /// The document's root node; `empty` is the message for a document with none.
    public func root(of yaml: String, empty: String) throws -> Node {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            throw self.error("", "not valid YAML: \(error)")
        }
        guard let root else { throw self.error("", empty) }
        return root
    }

    /// A mapping whose keys are all in `allowed`; an unknown key is an error at its own path.
    public func mapping(_ node: Node, path: String, allowed: [String]) throws -> [String: Node] {
        guard case .mapping(let map) = node else {
            throw error(path, "expected a mapping of \(allowed.joined(separator: ", "))")
        }
        var result: [String: Node] = [:]
        for (keyNode, value) in map {
            let key = keyNode.string ?? ""
            guard allowed.contains(key) else {
                throw error(path.isEmpty ? key : "\(path).\(key)", "unknown field; expected one of \(allowed.joined(separator: ", "))")
            }
            result[key] = value
        }
        return result
    }

    public func string(_ node: Node, path: String) throws -> String {
        guard case .scalar(let scalar) = node, !scalar.string.isEmpty else {
            throw error(path, "expected a non-empty text value")
        }
        return scalar.string
    }

    /// An integer; `_` may group digits (`1_000_000`).
    public func integer(_ node: Node, path: String) throws -> Int64 {
        guard case .scalar(let scalar) = node, let value = Int64(scalar.string.replacingOccurrences(of: "_", with: "")) else {
            throw error(path, "expected an integer, got '\(node.string ?? "a non-scalar")'")
        }
        return value
    }

    public func integer(_ node: Node, path: String, in range: ClosedRange<Int64>) throws -> Int64 {
        let value = try integer(node, path: path)
        guard range.contains(value) else {
            throw error(path, "must be between \(range.lowerBound) and \(range.upperBound), got \(value)")
        }
        return value
    }

    /// A finite number within `range` (printed without a fraction when it has none: `30`, `0.5`).
    public func number(_ node: Node, path: String, in range: ClosedRange<Double>) throws -> Double {
        guard case .scalar(let scalar) = node, let value = Double(scalar.string.replacingOccurrences(of: "_", with: "")), value.isFinite else {
            throw error(path, "expected a number, got '\(node.string ?? "a non-scalar")'")
        }
        guard range.contains(value) else {
            throw error(path, "must be between \(Self.format(range.lowerBound)) and \(Self.format(range.upperBound)), got \(Self.format(value))")
        }
        return value
    }

    /// A whole number as an integer, anything else with one decimal.
    public static func format(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(format: "%.1f", value)
    }
}
