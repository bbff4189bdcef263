import SluiceCore

/// Turns one partition's replication stream into lines, whole transactions at a time, and keeps
/// the position: the end LSN of the last transaction handed out (or a keepalive's position while
/// no transaction is open, so an idle partition's position still moves). No I/O: the source feeds
/// it frames; the tests feed it byte fixtures.
///
/// - Dedupe: a transaction whose commit LSN is below the position was handed out already (or was
///   skipped as empty before that point); it is dropped whole. The server applies the same rule
///   when streaming starts at a position, so a replay from a checkpoint never doubles a change.
/// - Partitioning: a change belongs to the partition of its row's key column (the new row for
///   inserts and updates, the old row for deletes) by the job's partitioner, as the engine's
///   partition check computes it: `murmur2` of the key's text (UTF-8), or `modulo` (Euclidean) of
///   an integer key. Without a job partitioner (raw change events): an integer key by modulo, any
///   other by murmur2. A NULL or missing key goes to partition 0.
public final class CdcStreamDecoder {
    public enum Mode: Sendable, Equatable {
        /// Every insert, update and delete as a change line (jobs of kind `changes`).
        case changes
        /// Inserts only, as CSV of these columns of the new row (a windowed job's schema), placed
        /// by the job's partitioner.
        case inserts(fields: [String], partitioner: Partitioner? = nil)
        /// A view's changelog (`ViewChangeLine`): inserts and updates as upserts of the new row,
        /// deletes as deletes of the old one, as CSV of these columns, placed by the key column
        /// and the job's partitioner. An update that moves the key to another partition is a
        /// delete of the old key in the old key's partition and an upsert in the new one's.
        case view(fields: [String], partitioner: Partitioner)

        var fields: [String]? {
            switch self {
            case .changes: nil
            case .inserts(let fields, _), .view(let fields, _): fields
            }
        }

        var partitioner: Partitioner? {
            switch self {
            case .changes: nil
            case .inserts(_, let p): p
            case .view(_, let p): p
            }
        }
    }

    private struct Transaction {
        var commitLSN: Int64
        var commitTimeMs: Int64
        var skip: Bool
        var index: Int64 = 0
        var start: Int  // where its lines begin in `pending`
        var events = 0
    }

    private struct Relation {
        var info: PgOutputRelation
        var keyIndex: Int?
        /// For `.inserts`: the column of each schema field.
        var fieldIndexes: [Int?]
        var captured: Bool
    }

    public let partition: Int
    public let partitions: Int
    private let table: String
    private let keyColumn: String
    private let mode: Mode
    private var relations: [UInt32: Relation] = [:]
    private var transaction: Transaction?
    /// Lines of complete transactions (and the open one, from its `start`).
    private var pending: [UInt8] = []
    private var pendingEvents = 0
    /// The position covering every complete transaction in `pending`.
    public private(set) var position: Int64
    /// The furthest WAL position the server has reported: the `write` of a status update.
    public private(set) var received: Int64 = 0
    /// The server asked for a status update at once.
    public var replyRequested = false
    /// Transactions dropped because they were below the position.
    public private(set) var skippedTransactions = 0

    public init(table: String, keyColumn: String, partitions: Int, partition: Int, mode: Mode, position: Int64) {
        self.table = table
        self.keyColumn = keyColumn
        self.partitions = partitions
        self.partition = partition
        self.mode = mode
        self.position = position
        received = position
    }

    public var inTransaction: Bool { transaction != nil }
    /// Bytes of complete transactions waiting to be taken.
    public var readyBytes: Int { transaction?.start ?? pending.count }

    /// Hands the lines of complete transactions to `body` (if any) and forgets them; returns their count.
    @discardableResult
    public func take(_ body: (UnsafeRawBufferPointer) -> Void) -> Int {
        let end = readyBytes
        guard end > 0 else { return 0 }
        pending.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[0..<end])) }
        pending.removeSubrange(0..<end)
        if var t = transaction { t.start = 0; transaction = t }
        let n = pendingEvents
        pendingEvents = 0
        return n
    }

    /// The connection broke: the open transaction will be sent again from the position.
    public func discardOpenTransaction() {
        guard let t = transaction else { return }
        pending.removeSubrange(t.start...)
        transaction = nil
    }

    /// One frame of the stream (XLogData or keepalive).
    public func handle(frame bytes: UnsafeRawBufferPointer) throws {
        switch try ReplicationFrame.decode(bytes) {
        case .keepalive(let walEnd, let reply):
            received = max(received, walEnd)
            if reply { replyRequested = true }
            // Between transactions, everything before the server's position has been sent.
            if transaction == nil, walEnd > position { position = walEnd }
        case .xlogData(let start, let end, let payload):
            received = max(received, start, end)
            try handle(message: PgOutputDecoder.decode(payload))
        }
    }

    public func handle(message: PgOutputMessage) throws {
        switch message {
        case .begin(let lsn, let micros, _):
            guard transaction == nil else { throw PgOutputError("begin inside an open transaction") }
            let skip = lsn < position
            if skip { skippedTransactions += 1 }
            guard let commitTimeMs = CdcStreamDecoder.unixMillis(micros) else {
                throw PgOutputError("begin: commit time \(micros) µs after 2000-01-01 is out of range")
            }
            transaction = Transaction(commitLSN: lsn, commitTimeMs: commitTimeMs, skip: skip, start: pending.count)
        case .commit(let lsn, let endLSN, _):
            guard let t = transaction else { throw PgOutputError("commit without a transaction") }
            guard lsn == t.commitLSN else { throw PgOutputError("commit LSN \(lsn) does not match begin's \(t.commitLSN)") }
            transaction = nil
            pendingEvents += t.events
            if !t.skip, endLSN > position { position = endLSN }
        case .relation(let info):
            let names = info.columns.map(\.name)
            var fieldIndexes: [Int?] = []
            if let fields = mode.fields { fieldIndexes = fields.map { names.firstIndex(of: $0) } }
            relations[info.id] = Relation(info: info, keyIndex: names.firstIndex(of: keyColumn), fieldIndexes: fieldIndexes,
                                          captured: info.name == table)
        case .insert(let id, let new):
            try change(id, op: "insert", before: nil, after: new, key: new)
        case .update(let id, let old, _, let new):
            try change(id, op: "update", before: old, after: new, key: new)
        case .delete(let id, let old, _):
            try change(id, op: "delete", before: old, after: nil, key: old)
        case .skipped:
            break
        }
    }

    private func change(_ id: UInt32, op: String, before: [PgOutputValue]?, after: [PgOutputValue]?, key: [PgOutputValue]) throws {
        guard var t = transaction else { throw PgOutputError("\(op) outside a transaction") }
        guard let relation = relations[id] else { throw PgOutputError("\(op) for relation \(id), which was never described") }
        let index = t.index
        t.index += 1
        defer { transaction = t }
        guard !t.skip, relation.captured else { return }
        if case .view = mode {
            t.events += viewChange(relation, op: op, before: before, after: after, commitTimeMs: t.commitTimeMs)
            return
        }
        guard owner(relation, key: key, fallback: before) == partition else { return }
        switch mode {
        case .changes:
            appendDecimal(t.commitLSN, to: &pending)
            pending.append(9)
            appendDecimal(index, to: &pending)
            pending.append(9)
            appendDecimal(t.commitTimeMs, to: &pending)
            pending.append(9)
            ChangeLine.appendTable(relation.info.qualifiedName.utf8, to: &pending)
            pending.append(9)
            pending.append(contentsOf: op.utf8)
            pending.append(9)
            if let before { ChangeJSON.append(relation.info.columns, before, fallback: nil, to: &pending) }
            pending.append(9)
            if let after { ChangeJSON.append(relation.info.columns, after, fallback: before, to: &pending) }
            pending.append(10)
        case .inserts:
            guard op == "insert", let after else { return }
            appendImage(relation, after, fallback: nil)
        case .view:
            return
        }
        t.events += 1
    }

    /// The view mode's lines for one change (see `Mode.view`); returns how many it wrote.
    private func viewChange(_ relation: Relation, op: String, before: [PgOutputValue]?, after: [PgOutputValue]?,
                            commitTimeMs: Int64) -> Int {
        var lines = 0
        if let before, op != "insert" {
            // A delete, or an update whose old key differs from the new one (PostgreSQL sends the
            // old key only then, or every time under replica identity full).
            let moved = op == "delete" || keyText(relation, before, fallback: nil) != keyText(relation, after ?? [], fallback: before)
            if moved, owner(relation, key: before, fallback: nil) == partition {
                ViewChangeLine.append(upsert: false, commitTimeMs: commitTimeMs, to: &pending)
                appendImage(relation, before, fallback: nil)
                lines += 1
            }
        }
        if let after, op != "delete", owner(relation, key: after, fallback: before) == partition {
            ViewChangeLine.append(upsert: true, commitTimeMs: commitTimeMs, to: &pending)
            appendImage(relation, after, fallback: before)
            lines += 1
        }
        return lines
    }

    /// The key column's text in a row (an unchanged TOAST value taken from `fallback`); nil for NULL.
    private func keyText(_ relation: Relation, _ row: [PgOutputValue], fallback: [PgOutputValue]?) -> [UInt8]? {
        guard let k = relation.keyIndex, k < row.count else { return nil }
        var value = row[k]
        if value == .unchangedToast, let fallback, k < fallback.count { value = fallback[k] }
        if case .text(let text) = value { return text }
        return nil
    }

    /// CSV of the schema's columns of `row` (an unchanged TOAST value from `fallback`; NULL, a
    /// missing column or an unknown value: an empty field), and the line's end.
    private func appendImage(_ relation: Relation, _ row: [PgOutputValue], fallback: [PgOutputValue]?) {
        for (f, column) in relation.fieldIndexes.enumerated() {
            if f > 0 { pending.append(44) }
            guard let column, column < row.count else { continue }
            var value = row[column]
            if value == .unchangedToast, let fallback, column < fallback.count { value = fallback[column] }
            if case .text(let text) = value { RowImageCSV.append(text, to: &pending) }
        }
        pending.append(10)
    }

    /// The partition of a change: its key's value modulo P.
    private func owner(_ relation: Relation, key: [PgOutputValue], fallback: [PgOutputValue]?) -> Int {
        guard partitions > 1 else { return 0 }
        guard let k = relation.keyIndex else { return 0 }
        var value = k < key.count ? key[k] : .null
        if value == .unchangedToast, let fallback, k < fallback.count { value = fallback[k] }
        guard case .text(let text) = value else { return 0 }
        return CdcStreamDecoder.partition(ofKey: text, partitions: partitions, partitioner: mode.partitioner)
    }

    /// The partition of a key given as PostgreSQL's text of it (see the type's comment).
    public static func partition(ofKey text: [UInt8], partitions: Int, partitioner: Partitioner? = nil) -> Int {
        let rule = KeyPartitioner(.murmur2, partitions: partitions)
        let integer = Int64(String(decoding: text, as: UTF8.self))
        switch partitioner {
        case .murmur2: return rule.murmur2Partition(text)
        case .consistentRandom: return rule.crc32Partition(text)
        case .modulo: return integer.map { KeyPartitioner.euclidean($0, partitions) } ?? 0
        case nil: return integer.map { KeyPartitioner.euclidean($0, partitions) } ?? rule.murmur2Partition(text)
        }
    }

    /// µs since 2000-01-01 → ms since 1970-01-01.
    /// Nil when the sum overflows: a corrupt commit time near Int64.max trapped here (seen beside
    /// a fuzz finding; fuzz/regressions/pgoutput/commit-time-overflow). PostgreSQL's own
    /// timestamps end in the year 294276, far inside the range.
    static func unixMillis(_ postgresMicros: Int64) -> Int64? {
        let (micros, overflow) = postgresMicros.addingReportingOverflow(PostgresEpoch.offsetMicros)
        return overflow ? nil : micros / 1_000
    }
}

enum PostgresEpoch {
    static let offsetMicros: Int64 = 946_684_800_000_000
}

/// A row as a JSON object of column name → text value or null. A value PostgreSQL did not send
/// (an unchanged TOAST value, `u`) is taken from `fallback` (the old row, complete under replica
/// identity full); without one the column is left out.
enum ChangeJSON {
    static func append(_ columns: [PgOutputRelation.Column], _ values: [PgOutputValue], fallback: [PgOutputValue]?,
                       to out: inout [UInt8]) {
        out.append(123)  // {
        var first = true
        for (i, column) in columns.enumerated() where i < values.count {
            var value = values[i]
            if value == .unchangedToast {
                guard let fallback, i < fallback.count, fallback[i] != .unchangedToast else { continue }
                value = fallback[i]
            }
            if !first { out.append(44) }
            first = false
            string(Array(column.name.utf8), to: &out)
            out.append(58)  // :
            switch value {
            case .text(let text): string(text, to: &out)
            default: out.append(contentsOf: "null".utf8)
            }
        }
        out.append(125)  // }
    }

    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    static func string(_ text: [UInt8], to out: inout [UInt8]) {
        out.append(34)
        for b in text {
            switch b {
            case 34: out.append(92); out.append(34)
            case 92: out.append(92); out.append(92)
            case 10: out.append(92); out.append(110)
            case 9: out.append(92); out.append(116)
            case 13: out.append(92); out.append(114)
            case 0..<32:
                out.append(contentsOf: [92, 117, 48, 48, hex[Int(b >> 4)], hex[Int(b & 15)]])
            default: out.append(b)
            }
        }
        out.append(34)
    }
}
