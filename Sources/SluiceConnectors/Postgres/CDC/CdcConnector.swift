// Postgres/CDC/: the `postgres-cdc://USER@HOST:PORT/DB?table=T&partitions=P[&key=…][&slot=…]
// [&publication=…]` connector, an input only: logical replication (pgoutput) of table T, one slot
// per partition (CdcSpec, CdcSetup, PgOutput, CdcStreamDecoder, PostgresCdcSource). For a job of
// kind `changes` it delivers change events; otherwise the inserted rows as row images (headerless
// CSV of the schema's fields in PostgreSQL's text output).

import Logging
import SluiceCore
import SluiceStorage

struct CdcConnector: SourceConnector {
    var usage: String { "postgres-cdc://USER@HOST:PORT/DB?table=T&partitions=P" }

    func claims(_ uri: String) -> Bool { CdcSpec.isCdc(uri) }

    var readsChangeEvents: Bool { true }
    var readsViewChangelog: Bool { true }

    func openSource(uri: String, options: SourceOptions) throws -> any SourcePartitions {
        let spec = try CdcSpec(uri: uri, jobName: options.jobName)
        let fields = options.schema.fields.map(\.name)
        let mode: CdcStreamDecoder.Mode
        if options.changeEvents {
            mode = .changes
        } else if options.view, let partitioner = options.partitioner {
            // The slot's decoder places each change by the key column of the URI: the view's key.
            guard options.keyFields == [spec.keyColumn] else {
                throw SourceError("a view over \(CdcSpec.scheme) is keyed by the source's key column '\(spec.keyColumn)' (key= in the URI, default id), which decides the partition of each change; the job's key is \(options.keyFields.joined(separator: ", ")): give `key: \(spec.keyColumn)`, or key=\(options.keyFields.first ?? "COLUMN") in the URI")
            }
            mode = .view(fields: fields, partitioner: partitioner)
        } else {
            mode = .inserts(fields: fields, partitioner: options.partitioner)
        }
        return CdcPartitions(spec: spec, mode: mode)
    }

    func inputIdentity(_ uri: String) -> String { PostgresTableURI.identity(uri, scheme: "postgres-cdc") }
}

struct CdcPartitions: SourcePartitions {
    let spec: CdcSpec
    let mode: CdcStreamDecoder.Mode
    var partitions: Int { spec.partitions }
    var deliversRowImages: Bool {
        if case .changes = mode { return false }
        return true
    }

    func open(partition: Int, position: Int64, tuning: SourceTuning, logger: Logger) throws -> any PartitionSource {
        try PostgresCdcSource(spec: spec, mode: mode, partition: partition, position: position, logger: logger)
    }
}
