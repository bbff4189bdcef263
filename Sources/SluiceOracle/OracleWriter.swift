// Writes an oracle result as the three CSV files `sluice oracle` produces.

import Foundation
import SluiceCore

extension Oracle {
    /// Writes `results.csv` (a header of `pipeline.outputColumns`, then the rows), `late.csv`
    /// (`partition,offset`) and `dead_letters.csv` (`partition,offset,reason`) into `directory`,
    /// creating it if needed. Every line ends with `\n`. A reason that holds a comma, quote or line
    /// break is quoted as in RFC 4180. For a records job the rows are `RecordText.row` lines (the
    /// sinks' file form) and `duplicates.csv` (`partition,offset,value`, the value as an RFC 4180
    /// field) lists the events dedupe dropped; an integer job's files are as they always were.
    public static func write(_ result: OracleResult, pipeline: Pipeline, to directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try writeLines([pipeline.outputColumns.joined(separator: ",")] + result.rows,
                       to: directory, file: "results.csv")
        try writeLines(["partition,offset"] + result.late.map { "\($0.partition),\($0.offset)" },
                       to: directory, file: "late.csv")
        try writeLines(["partition,offset,reason"] + result.deadLetters.map { "\($0.partition),\($0.offset),\(csvField($0.reason))" },
                       to: directory, file: "dead_letters.csv")
        if !pipeline.isIntegerCSV {
            try writeLines(["partition,offset,value"] + result.duplicates.map { "\($0.partition),\($0.offset),\(RecordText.field(.string($0.value)))" },
                           to: directory, file: "duplicates.csv")
        }
    }

    static func csvField(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    private static func writeLines(_ lines: [String], to directory: String, file: String) throws {
        let path = (directory as NSString).appendingPathComponent(file)
        var text = lines.joined(separator: "\n")
        text += "\n"
        do {
            try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw OracleError("cannot write '\(path)': \(error.localizedDescription)")
        }
    }
}

public struct OracleError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
