import Logging
import SluiceCore
import SluiceStorage

/// `postgres-outbox://USER@HOST:PORT/DB?table=T&partitions=P[&key=COLUMN][&op=COLUMN]`: the transactional
/// outbox pattern. Writers insert events into table T (`id bigint`, the key column, the job's
/// schema fields, and `txid xid8 NOT NULL DEFAULT pg_current_xact_id()`) in their own
/// transactions; partition p reads the rows whose key is p modulo P.
///
/// Why `txid` and not only `id`: ids come from a sequence at insert time, so a slow transaction can
/// commit id 10 after id 11 is already visible; reading "ids above the last one seen" would then
/// skip 10 for ever. Instead a partition reads in (txid, id) order and only rows of transactions
/// older than the oldest one still running (`pg_snapshot_xmin(pg_current_snapshot())`): that set
/// can no longer change, so the position — "every transaction below this txid is consumed" — is
/// exact, and a replay from a checkpoint reads the very same rows in the same order.
public struct OutboxSpec: Sendable, Equatable {
    public var url: PostgresURL
    public var table: String
    public var keyColumn: String
    public var partitions: Int
    /// The column holding each row's operation, for a view (`delete` or `d` deletes the key;
    /// `insert`, `update`, `upsert` and their initials set its row).
    public var opColumn: String?

    public static let scheme = "postgres-outbox://"

    public static func isOutbox(_ uri: String) -> Bool { uri.hasPrefix(scheme) }

    public init(uri: String) throws {
        let parsed = try PostgresTableURI(uri: uri, scheme: OutboxSpec.scheme, defaultKey: "key", maxPartitions: 100_000,
                                          usage: "write postgres-outbox://USER@HOST:PORT/DB?table=TABLE&partitions=P[&key=COLUMN]")
        url = parsed.url
        table = parsed.table
        keyColumn = parsed.keyColumn
        partitions = parsed.partitions
        opColumn = parsed.url.options["op"]
        if let opColumn, !SQLIdentifier.isPlain(opColumn) { throw parsed.error("op= must name a column (letters, digits, _)") }
    }
}

/// A view's operation from an outbox row's op column: upsert, delete, or nil (not an operation).
enum OutboxOperation {
    static func upsert(_ text: String?) -> Bool? {
        switch text?.lowercased() {
        case "insert", "update", "upsert", "i", "u", "c", "r": true
        case "delete", "d": false
        default: nil
        }
    }
}

/// One partition of an outbox table. The position is a txid: every transaction below it is read.
public final class PostgresOutboxSource: PartitionSource {
    public private(set) var position: Int64
    public var remaining: Int64? { nil }
    public var positionCountsLines: Bool { false }
    public private(set) var lastReadWasEmpty = false

    private let spec: OutboxSpec
    private let partition: Int
    private let session: PostgresSession
    private let select: String
    private let fieldCount: Int
    private let batchRows: Int
    /// A view's changelog: each row becomes a `ViewChangeLine` by its op column.
    private let view: Bool
    private var text: [UInt8] = []

    public init(spec: OutboxSpec, schema: Schema, partition: Int, position: Int64, batchRows: Int = 20_000,
                view: Bool = false, logger: Logger = .silent) throws {
        self.view = view
        self.spec = spec
        self.partition = partition
        self.position = position
        self.batchRows = batchRows
        fieldCount = schema.fields.count
        session = PostgresSession(url: spec.url, name: "outbox source, partition \(partition)", logger: logger)
        var columns = schema.fields.map { "\"\($0.name)\"::text" }.joined(separator: ", ")
        if view, let op = spec.opColumn { columns += ", \"\(op)\"::text" }
        let key = "\"\(spec.keyColumn)\"", table = "\"\(spec.table)\""
        select = """
            SELECT txid::text::bigint, \(columns) FROM \(table)
            WHERE (\(key) % $1 + $1) % $1 = $2 AND txid >= $3::text::xid8 AND txid < $4::text::xid8
            ORDER BY txid, id LIMIT $5
            """
        try session.connect()
    }

    public func read(_ body: (UnsafeRawBufferPointer) -> Void) throws -> Bool {
        let (rows, next) = try session.run { conn, _ -> (PostgresResult?, Int64) in
            // Every transaction below the horizon has ended: the rows below it are final.
            let horizon = try conn.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint").int64(0, 0)
            guard horizon > position else { return (nil, position) }
            let p = Int64(spec.partitions)
            var rows = try conn.execute(select, [.int(p), .int(Int64(partition)), .int(position), .int(horizon), .int(Int64(batchRows))])
            guard rows.count == batchRows else { return (rows, horizon) }
            // A full batch may end inside a transaction: keep whole transactions only, or read the
            // first one whole when it alone fills the batch.
            let first = try rows.int64(0, 0), last = try rows.int64(rows.count - 1, 0)
            if first == last {
                rows = try conn.execute(select, [.int(p), .int(Int64(partition)), .int(first), .int(first + 1), .int(Int64.max)])
                return (rows, first + 1)
            }
            return (rows, last)  // rows of `last` are read again next time, whole
        }
        text.removeAll(keepingCapacity: true)
        if let rows {
            for r in 0..<rows.count {
                if try rows.int64(r, 0) >= next { break }
                if view {
                    // An op that is none of the words: a line the processor dead-letters, naming it.
                    let op = rows.string(r, fieldCount + 1)
                    if let upsert = OutboxOperation.upsert(op) {
                        ViewChangeLine.append(upsert: upsert, commitTimeMs: 0, to: &text)
                    } else {
                        let shown = op.map { "'" + String($0.unicodeScalars.prefix(40).map { $0.properties.isAlphabetic || $0.properties.numericType != nil ? Character($0) : "?" }) + "'" } ?? "NULL"
                        text.append(contentsOf: "?\top column '\(spec.opColumn ?? "")' is \(shown), not insert, update, upsert or delete\t".utf8)
                    }
                }
                for f in 0..<fieldCount {
                    if f > 0 { text.append(44) }
                    if let value = rows.string(r, f + 1) { RowImageCSV.append(value.utf8, to: &text) }  // NULL: empty
                }
                text.append(10)
            }
        }
        position = next
        lastReadWasEmpty = text.isEmpty
        if !text.isEmpty { text.withUnsafeBytes { body($0) } }
        return true  // an outbox never ends
    }
}
