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

    func openSource(uri: String, options: SourceOptions) throws -> any SourcePartitions {
        OutboxPartitions(spec: try OutboxSpec(uri: uri), schema: options.schema)
    }

    func inputIdentity(_ uri: String) -> String { PostgresTableURI.identity(uri, scheme: "postgres-outbox") }
}

struct OutboxPartitions: SourcePartitions {
    let spec: OutboxSpec
    let schema: Schema
    var partitions: Int { spec.partitions }
    var deliversRowImages: Bool { true }

    func open(partition: Int, position: Int64, tuning: SourceTuning, logger: Logger) throws -> any PartitionSource {
        try PostgresOutboxSource(spec: spec, schema: schema, partition: partition, position: position, logger: logger)
    }
}
