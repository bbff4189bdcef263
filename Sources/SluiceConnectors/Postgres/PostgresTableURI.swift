// Postgres/: the PostgreSQL connectors, each in its folder: Sink/ (`postgres://`, a sink),
// Outbox/ (`postgres-outbox://`, an input) and CDC/ (`postgres-cdc://`, an input). This file holds
// what the two sources share in their URI; RowImageCSV.swift the text of their row images.

import SluiceStorage

/// What the sources that read a PostgreSQL table share in their URI (`SCHEME://USER@HOST:PORT/DB?
/// table=T&partitions=P[&key=COLUMN]…`): the server, the table, the partition count and the key
/// column that spreads rows over partitions (key modulo P). Each source adds its own parameters.
struct PostgresTableURI {
    let url: PostgresURL
    let table: String
    let partitions: Int
    let keyColumn: String
    /// The source's usage line, ended by every error.
    private let usage: String

    init(uri: String, scheme: String, defaultKey: String, maxPartitions: Int, partitionsNote: String = "", usage: String) throws {
        guard uri.hasPrefix(scheme) else { throw SourceError("'\(PostgresURL.redact(uri))' is not a \(scheme) source") }
        let url = try PostgresURL("postgres://" + uri.dropFirst(scheme.count))
        self.url = url
        self.usage = usage
        guard let table = url.options["table"], SQLIdentifier.isPlain(table) else {
            throw Self.error(url, "table= must name the table to read (letters, digits, _)", usage)
        }
        guard let text = url.options["partitions"], let partitions = Int(text), (1...maxPartitions).contains(partitions) else {
            throw Self.error(url, "partitions= must be a number of partitions between 1 and \(maxPartitions)\(partitionsNote)", usage)
        }
        let key = url.options["key"] ?? defaultKey
        guard SQLIdentifier.isPlain(key) else { throw Self.error(url, "key= must name a column (letters, digits, _)", usage) }
        self.table = table
        self.partitions = partitions
        keyColumn = key
    }

    /// An error about this URI's parameter, naming the fix.
    func error(_ what: String) -> SourceError { Self.error(url, what, usage) }

    private static func error(_ url: PostgresURL, _ what: String, _ usage: String) -> SourceError {
        SourceError("source '\(url.redacted)': \(what); \(usage)")
    }
}

/// Names spliced into SQL (always quoted): plain identifiers only.
enum SQLIdentifier {
    static func isPlain(_ s: String) -> Bool {
        guard let first = s.utf8.first, !(first >= 48 && first <= 57), s.utf8.count <= 63 else { return false }
        return s.utf8.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 65 && $0 <= 90) || ($0 >= 48 && $0 <= 57) || $0 == 95 }
    }
}

extension PostgresTableURI {
    /// `SCHEME:DB/TABLE?key=KEY`: what a store is bound to for a source reading a PostgreSQL table
    /// (database and table, not host and port). Unchanged from before the registry: existing
    /// stores compare it.
    static func identity(_ uri: String, scheme: String) -> String {
        // `postgres-…://` becomes `postgres://` for the URL parser.
        let url = try? PostgresURL("postgres://" + uri.drop(while: { $0 != ":" }).dropFirst(3))
        let table = url?.options["table"] ?? ""
        let key = url?.options["key"] ?? "key"
        return "\(scheme):\(StoreBinding.database(url))/\(table)?key=\(key)"
    }
}
