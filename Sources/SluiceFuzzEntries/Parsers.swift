import SluiceCore
import SluiceJob

// The expression language (Lexer, Parser, TypeChecker, Evaluator) and the job spec loader.

extension FuzzTargets {
    static let expressionFields: [(name: String, type: ValueType)] = [
        ("s", .string), ("i", .int64), ("u", .uint64), ("f", .float64), ("b", .bool), ("t", .timestamp),
        ("d", .decimal(scale: 2)), ("e", .decimal(scale: 18)), ("odd name", .string),
    ]

    /// Records the checked expression is evaluated on: ordinary values, extremes, nulls.
    static let expressionRecords: [[Value]] = [
        [.string("paid"), .int64(42), .uint64(7), .float64(2.5), .bool(true), .timestamp(1_767_225_600_000),
         .decimal(1_234, scale: 2), .decimal(1, scale: 18), .string("é")],
        [.string(""), .int64(.max), .uint64(.max), .float64(-1e308), .bool(false), .timestamp(.min),
         .decimal(.max, scale: 2), .decimal(.min, scale: 18), .string("\u{0}")],
        [.string("x"), .int64(.min), .uint64(0), .float64(0), .bool(false), .timestamp(.max),
         .decimal(.min, scale: 2), .decimal(.max, scale: 18), .string("")],
        Array(repeating: .null, count: 9),
    ]

    /// The input as expression text: parse, check against a record of every type, evaluate.
    public static let expression: Entry = { data in
        let source = String(decoding: data, as: UTF8.self)
        guard let parsed = try? Expression.parse(source) else { return }
        _ = parsed.fieldNames
        guard let typed = try? TypedExpression(parsed, fields: expressionFields) else { return }
        for record in expressionRecords {
            if case .success(let value) = typed.evaluate(record), case .float64(let v) = value {
                precondition(v.isFinite, "the evaluator made a non-finite float64 from \(source)")
            }
        }
    }

    /// The input as a job spec. One that loads must give a pipeline the engine builds and runs
    /// (the engine's preconditions trust the loader's validation).
    public static let jobspec: Entry = { data in
        guard let job = try? JobSpec.parse(yaml: String(decoding: data, as: UTF8.self)), job.kind == .windows else { return }
        let pipeline = job.pipeline
        let processor: any PartitionProcessing = pipeline.isIntegerCSV
            ? PartitionProcessor(partition: 0, pipeline: pipeline)
            : RecordProcessor(partition: 0, partitions: 4, pipeline: pipeline)
        let text = Array("1,2,3,4\n{\"a\":1}\n\n".utf8)
        text.withUnsafeBytes { _ = processor.process($0) }
        do {
            try processor.restore(try processor.snapshot())
        } catch {
            preconditionFailure("a processor's own snapshot did not restore: \(error)")
        }
        processor.finish()
        _ = processor.takeOutput()
    }
}
