import Foundation
import SluiceJob
import SluiceStorage
import SluiceWorkload

/// What a checkpoint store is bound to: everything that changes what a run writes. A store bound
/// to one job, input, sink and table never resumes a run of another (that would write nothing, or
/// leave another input's results in place, and exit 0).
///
/// Inputs and sinks are named by their kind and location: a directory or database file by its
/// absolute path; a PostgreSQL table by database and table, not by host and port (a failover or
/// a Service name moves those, not the data); the generator by all its parameters.
public enum StoreBinding {
    /// `job=…; input=…; sink=…; table=…`, the parts `bind` compares one by one.
    public static func fingerprint(job: JobSpec, input: String, output: String) -> String {
        "job=\(job.fingerprint); input=\(inputIdentity(input)); sink=\(sinkIdentity(output)); table=\(job.table)"
    }

    static func inputIdentity(_ uri: String) -> String {
        if OutboxSpec.isOutbox(uri) || CdcSpec.isCdc(uri) {
            let scheme = OutboxSpec.isOutbox(uri) ? "postgres-outbox" : "postgres-cdc"
            // `postgres-…://` becomes `postgres://` for the URL parser.
            let url = try? PostgresURL("postgres://" + uri.drop(while: { $0 != ":" }).dropFirst(3))
            let table = url?.options["table"] ?? ""
            let key = url?.options["key"] ?? "key"
            return "\(scheme):\(database(url))/\(table)?key=\(key)"
        }
        switch try? WorkloadInput.parse(uri) {
        case .files(let directory)?: return "file:" + absolute(directory)
        case .generator(let c)?: return "gen:seed=\(c.seed),events=\(c.events),partitions=\(c.partitions),keys=\(c.keys)"
        case nil: return uri
        }
    }

    static func sinkIdentity(_ uri: String) -> String {
        if PostgresURL.isPostgres(uri), let url = try? PostgresURL(uri) {
            var text = "postgres:\(database(url))"
            if let table = url.options["table"] { text += "/\(table)" }
            return text + "?mode=\(url.options["mode"] ?? "transactional")"
        }
        for scheme in ["sqlite:", "file:"] where uri.hasPrefix(scheme) {
            return scheme + absolute(String(uri.dropFirst(scheme.count)))
        }
        return uri
    }

    private static func database(_ url: PostgresURL?) -> String {
        guard let target = url?.target, let slash = target.lastIndex(of: "/") else { return "" }
        return String(target[target.index(after: slash)...])
    }

    private static func absolute(_ path: String) -> String {
        URL(fileURLWithPath: path).standardizedFileURL.path
    }
}
