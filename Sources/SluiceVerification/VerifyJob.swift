import SluiceConnectors
import SluiceJob
import SluiceOracle
import SluiceWorkload

extension Verification {
    /// `sluice verify`: the oracle's results for `job` over `input`, compared with what the sink at
    /// `output` committed (the demo and the chaos harness ask the same).
    public static func verify(job: JobSpec, input: String, output: String) throws -> Verification {
        let parsed = try WorkloadInput.parse(input)
        let oracle = try Oracle.run(pipeline: job.pipeline, input: parsed)
        let contents = try SinkReader.read(uri: output, job: job)
        return compare(oracle: oracle, sink: contents, inputLines: try InputLines.rejected(by: oracle, in: parsed))
    }
}
