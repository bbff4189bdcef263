// Postgres/Outbox/: the `postgres-outbox://USER@HOST:PORT/DB?table=T&partitions=P[&key=COLUMN]`
// connector, an input only: the transactional outbox table read in (txid, id) order below the
// oldest running transaction (PostgresOutboxSource.swift). Its records are row images: headerless
// CSV of the schema's fields in PostgreSQL's text output.

import Logging
import SluiceCore
import SluiceStorage

struct OutboxConnector: SourceConnector {
    var usage: String { "postgres-outbox://USER@HOST:PORT/DB?table=T&partitions=P" }

    func claims(_ uri: String) -> Bool { OutboxSpec.isOutbox(uri) }

    /// With `op=COLUMN`: each row upserts or deletes its key.
    var readsViewChangelog: Bool { true }

    func openSource(uri: String, options: SourceOptions) throws -> any SourcePartitions {
        let spec = try OutboxSpec(uri: uri)
        if options.view {
            guard spec.opColumn != nil else {
                throw SourceError("a view over \(OutboxSpec.scheme) needs the column that holds each row's operation: add op=COLUMN to the URI (its values: insert, update, upsert or delete)")
            }
            guard options.keyFields == [spec.keyColumn] else {
                throw SourceError("a view over \(OutboxSpec.scheme) is keyed by the outbox's key column '\(spec.keyColumn)' (key= in the URI, default key), which decides the partition of each row; the job's key is \(options.keyFields.joined(separator: ", ")): give `key: \(spec.keyColumn)`, or key=\(options.keyFields.first ?? "COLUMN") in the URI")
            }
        }
        return OutboxPartitions(spec: spec, schema: options.schema, view: options.view)
    }

    func inputIdentity(_ uri: String) -> String { PostgresTableURI.identity(uri, scheme: "postgres-outbox") }
}

struct OutboxPartitions: SourcePartitions {
    let spec: OutboxSpec
    let schema: Schema
    var view = false
    var partitions: Int { spec.partitions }
    var deliversRowImages: Bool { true }

    func open(partition: Int, position: Int64, tuning: SourceTuning, logger: Logger) throws -> any PartitionSource {
        try PostgresOutboxSource(spec: spec, schema: schema, partition: partition, position: position, view: view, logger: logger)
    }
}
