// The one lookup from a URI to its connector (docs/DESIGN.md, "Connectors"). Each connector lives
// in its own folder (File/, Generator/, SQLite/, Postgres/Sink/, Postgres/Outbox/, Postgres/CDC/)
// and owns its URI spec (parsed and validated with errors that name the fix), its source and/or
// sink, its read-back for `sluice verify`, its checkpoint store default (`Sink.defaultStatePath`)
// and what a store is bound to (`StoreBinding`). Adding a connector: its folder, and one line in
// `ConnectorRegistry.connectors`. The public entry points (`SourceFactory`, `SinkFactory`,
// `SinkReader`, `StoreBinding`) are thin calls into this lookup.

import Logging
import SluiceCore
import SluiceJob
import SluiceStorage
import SluiceWorkload

/// What every connector says: its URIs.
protocol Connector: Sendable {
    /// How a user writes its URI, for messages (`file:DIR`).
    var usage: String { get }
    /// True when `uri` is this connector's (by its scheme; schemes never overlap).
    func claims(_ uri: String) -> Bool
}

/// A connector that reads: it opens an input's partitions.
protocol SourceConnector: Connector {
    /// Reads change events, the input of a job of kind `changes`.
    var readsChangeEvents: Bool { get }
    /// Delivers a changelog a job of kind `view` can keep (each record a key's new row or its delete).
    var readsViewChangelog: Bool { get }
    func openSource(uri: String, options: SourceOptions) throws -> any SourcePartitions
    /// The input's identity for `StoreBinding` (what a store is bound to). It must never change for
    /// a URI that exists today: existing stores would refuse their own runs.
    func inputIdentity(_ uri: String) -> String
}

extension SourceConnector {
    var readsChangeEvents: Bool { false }
    var readsViewChangelog: Bool { false }
}

/// A connector that writes.
protocol SinkConnector: Connector {
    /// Keeps a view: a table updated in place, or a compacted topic (not a directory of files).
    var keepsViews: Bool { get }
    func openSink(uri: String, job: JobSpec, logger: Logger) throws -> any Sink
    /// Refuses what `openSink` would refuse for the URI alone, touching no file or server.
    func validateSink(uri: String, job: JobSpec) throws
    /// What the sink committed, for `sluice verify` (rows as the oracle renders them).
    func readBack(uri: String, job: JobSpec, statePath: String?) throws -> SinkContents
    /// The sink's identity for `StoreBinding`; as stable as `inputIdentity`.
    func sinkIdentity(_ uri: String) -> String
}

extension SinkConnector {
    var keepsViews: Bool { false }
}

/// What opening a source needs besides its URI.
struct SourceOptions: Sendable {
    /// The fields a source that stores columns (outbox, CDC) delivers, in this order.
    var schema: Schema
    /// The job writes change events (kind `changes`).
    var changeEvents: Bool
    /// The job keeps a view (kind `view`): the source delivers `ViewChangeLine`s.
    var view: Bool = false
    /// Names per-job server objects (CDC slots).
    var jobName: String
    /// The job's partitioner (windowed jobs): where a source that places rows itself (CDC) puts a key.
    var partitioner: Partitioner?
    /// The job's record format (a message-based source frames its records by it).
    var format: RecordFormat = .csv(header: false, delimiter: 44)
    /// A windowed job's key fields (a keyed source checks its messages' keys against them).
    var keyFields: [String] = []
}

/// Block sizes a throttled run shrinks (`SourceFactory.throttled`).
struct SourceTuning: Sendable {
    var generatorLinesPerRead: Int64
    var fileBlockBytes: Int
}

/// An input's partitions, as its connector opened them from the URI.
protocol SourcePartitions: Sendable {
    var partitions: Int { get }
    /// Records are headerless CSV of the schema's fields in PostgreSQL's text output (row images:
    /// NULL an empty unquoted field, strings quoted per RFC 4180 when they must be), for
    /// `RecordDecoder(mode: .postgres)`.
    var deliversRowImages: Bool { get }
    func open(partition: Int, position: Int64, tuning: SourceTuning, logger: Logger) throws -> any PartitionSource
    /// The same, given the note the partition's last checkpoint kept for its source.
    func open(partition: Int, position: Int64, note: String?, tuning: SourceTuning, logger: Logger) throws -> any PartitionSource
}

extension SourcePartitions {
    var deliversRowImages: Bool { false }

    func open(partition: Int, position: Int64, note: String?, tuning: SourceTuning, logger: Logger) throws -> any PartitionSource {
        try open(partition: partition, position: position, tuning: tuning, logger: logger)
    }
}

enum ConnectorRegistry {
    /// Every connector. Schemes are disjoint, so the order only sets how messages list them.
    static let connectors: [any Connector] = [
        FileConnector(),
        GeneratorConnector(),
        SQLiteConnector(),
        PostgresSinkConnector(),
        OutboxConnector(),
        CdcConnector(),
        KafkaConnector(),
    ]

    static func connector(for uri: String) -> (any Connector)? {
        connectors.first { $0.claims(uri) }
    }

    /// The connector that reads `uri`. A URI no connector claims is a directory, as inputs always
    /// were (`--input data/` means `file:data/`).
    static func source(_ uri: String) throws -> any SourceConnector {
        switch connector(for: uri) {
        case let source as any SourceConnector: return source
        case let other?:
            throw SourceError("'\(PostgresURL.redact(uri))' is a sink (\(other.usage)), not an input; expected \(sourceUsages)")
        case nil: return FileConnector()
        }
    }

    static func sink(_ uri: String) throws -> any SinkConnector {
        switch connector(for: uri) {
        case let sink as any SinkConnector: return sink
        case let other?:
            throw SinkError("'\(PostgresURL.redact(uri))' is an input (\(other.usage)), not a sink; expected \(sinkUsages)")
        case nil:
            throw SinkError("unknown sink '\(PostgresURL.redact(uri))'; expected \(sinkUsages)")
        }
    }

    static var sourceUsages: String { list(connectors.filter { $0 is any SourceConnector }.map(\.usage)) }
    static var sinkUsages: String { list(connectors.filter { $0 is any SinkConnector }.map(\.usage)) }
    static var changeSourceUsages: String {
        list(connectors.compactMap { ($0 as? any SourceConnector)?.readsChangeEvents == true ? $0.usage : nil })
    }

    /// `a, b or c`.
    private static func list(_ usages: [String]) -> String {
        guard usages.count > 1 else { return usages.first ?? "" }
        return usages.dropLast().joined(separator: ", ") + " or " + (usages.last ?? "")
    }

    static func inputIdentity(_ uri: String) -> String {
        (try? source(uri))?.inputIdentity(uri) ?? uri
    }

    static func sinkIdentity(_ uri: String) -> String {
        (connector(for: uri) as? any SinkConnector)?.sinkIdentity(uri) ?? uri
    }
}
