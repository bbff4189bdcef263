import SluiceConnectors
import SluiceJob
import SluiceOracle
import SluiceWorkload

extension Verification {
    /// `sluice verify`: the oracle's results for `job` over `input`, compared with what the sink at
    /// `output` committed: rows, late events and dead letters (by the input's record at each
    /// position), and the events dedupe dropped. The demo and the chaos harness ask the same.
    /// `statePath`: the checkpoint store, where a Kafka sink keeps its rejected events.
    public static func verify(job: JobSpec, input: WorkloadInput, output: String,
                              statePath: String? = nil) throws -> (oracle: OracleResult, verification: Verification) {
        let oracle = try Oracle.run(pipeline: job.pipeline, input: input)
        let contents = try SinkReader.read(uri: output, job: job, statePath: statePath)
        let lines = try InputLines.rejected(by: oracle, in: input, pipeline: job.pipeline)
        // Integer jobs have no dedupe and their sinks no duplicates table.
        let duplicates = job.pipeline.isIntegerCSV ? nil
            : contents.duplicates.map { (partition: $0.partition, offset: $0.offset, value: $0.value ?? "") }
        return (oracle, compare(oracle: oracle, sink: contents, inputLines: lines, sinkDuplicates: duplicates))
    }

    public static func verify(job: JobSpec, input: String, output: String, statePath: String? = nil) throws -> Verification {
        try verify(job: job, input: try WorkloadInput.parse(input), output: output, statePath: statePath).verification
    }
}
