import ArgumentParser
import Foundation
import SluiceConnectors
import SluiceJob

struct Split: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Split a CSV or JSON-lines file into partition files by the job's key and partitioner.",
        discussion: """
            Writes DIR/part-00000.csv (or .json) … for a file input of P partitions: each record goes to \
            its key's partition (the job's partitioner: murmur2, as Kafka's default partitioner, or \
            modulo). A CSV header is copied to every part. Records that cannot be decoded, or whose key \
            is null, go to DIR/unpartitioned.csv (or .json).
            """)

    @Option(help: "Job spec (YAML): its schema, format, key and partitioner.") var job: String
    @Option(help: "The CSV or JSON-lines file to split.") var input: String
    @Option(help: "Number of partitions.") var partitions: Int
    @Option(help: "Output directory, new or empty.") var out: String

    func run() throws {
        guard partitions > 0 else { throw userError(ValidationError("--partitions must be at least 1, got \(partitions)")) }
        let spec: JobSpec
        do {
            // A split needs the job's schema and key, not its engine: records jobs are welcome.
            spec = try JobSpec.parse(yaml: String(contentsOfFile: job, encoding: .utf8))
        } catch {
            throw userError(ValidationError("--job: \(error)"))
        }
        guard FileManager.default.fileExists(atPath: input) else {
            throw userError(ValidationError("--input: no file '\(input)'"))
        }
        let summary: Splitter.Summary
        do {
            summary = try Splitter(job: spec, partitions: partitions).split(input: input, into: out)
        } catch {
            throw userError(error)
        }
        let total = summary.perPartition.reduce(0, +)
        print("split: \(total) records into \(partitions) partitions in \(out)")
        if let path = summary.unpartitionedPath {
            print("split: \(summary.unpartitioned) records not partitioned (undecodable, or a null key) -> \(path)")
        }
    }
}
