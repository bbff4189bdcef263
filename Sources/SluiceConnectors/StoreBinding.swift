import Foundation
import SluiceJob
import SluiceStorage

/// What a checkpoint store is bound to: everything that changes what a run writes. A store bound
/// to one job, input, sink and table never resumes a run of another (that would write nothing, or
/// leave another input's results in place, and exit 0).
///
/// Inputs and sinks are named by their connector (`SourceConnector.inputIdentity`,
/// `SinkConnector.sinkIdentity`): a directory or database file by its absolute path; a PostgreSQL
/// table by database and table, not by host and port (a failover or a Service name moves those,
/// not the data); the generator by all its parameters.
public enum StoreBinding {
    /// `job=…; input=…; sink=…; table=…`, the parts `bind` compares one by one.
    public static func fingerprint(job: JobSpec, input: String, output: String) -> String {
        "job=\(job.fingerprint); input=\(ConnectorRegistry.inputIdentity(input)); sink=\(ConnectorRegistry.sinkIdentity(output)); table=\(job.table)"
    }

    /// The database name of a PostgreSQL URL (empty when there is none).
    static func database(_ url: PostgresURL?) -> String {
        guard let target = url?.target, let slash = target.lastIndex(of: "/") else { return "" }
        return String(target[target.index(after: slash)...])
    }

    static func absolute(_ path: String) -> String {
        URL(fileURLWithPath: path).standardizedFileURL.path
    }
}
