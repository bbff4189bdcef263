import CLibPQ
import SluiceCore
#if canImport(Glibc)
import Glibc
#endif

/// An error from PostgreSQL or libpq, with the server's SQLSTATE when there is one.
public struct PostgresError: Error, CustomStringConvertible {
    public var message: String
    /// Five characters (e.g. `40001`, `57P01`), or nil for a client-side failure.
    public var sqlState: String?
    /// The connection is gone (server restarted, network cut): reconnect before anything else.
    public var connectionLost: Bool

    public var description: String {
        "PostgreSQL: \(message)" + (sqlState.map { " (SQLSTATE \($0))" } ?? "")
    }

    /// Worth retrying the whole transaction on a fresh connection: the connection broke, the server
    /// is shutting down or starting, or the transaction lost a serialization race.
    public var isTransient: Bool {
        if connectionLost { return true }
        guard let state = sqlState else { return false }
        return state.hasPrefix("08") || state.hasPrefix("57P") || state == "40001" || state == "40P01" || state == "53300"
    }
}

/// A parameter of a query: sent as text, except bytes (binary, so no escaping).
public enum PostgresValue: Sendable, Equatable {
    case null
    case int(Int64)
    case text(String)
    case bytes([UInt8])
    case bool(Bool)
}

/// One libpq connection, synchronous: every call blocks until the server answers. Not
/// thread-safe: one owner at a time (a store's serial executor). The password comes from the URL,
/// `PGPASSWORD` or a password file (`PGPASSFILE`, `~/.pgpass`), all read by libpq itself; Sluice
/// never logs it (messages name `url.redacted`).
public final class PostgresConnection {
    /// libpq's handle (internal: the replication stream in PostgresConnection+Replication.swift uses it).
    var conn: OpaquePointer?
    public let url: PostgresURL

    /// Connects, waiting at most `connectTimeoutSeconds`. TCP keepalives and a user timeout make a
    /// silently dead server or a blackholed link an error in bounded time rather than a hang of
    /// minutes (the kernel's defaults): an idle connection is probed after 5 s, every 2 s, and
    /// dropped after 3 unanswered probes (about 11 s); data unacknowledged for 15 s drops it too
    /// (`tcp_user_timeout`, which also covers a query in flight). A URL that sets any of these wins.
    /// `replication: true` opens a logical replication connection (`replication=database`), which
    /// takes simple queries and the replication commands (see PostgresConnection+Replication.swift).
    public init(url: PostgresURL, connectTimeoutSeconds: Int = 5, applicationName: String = "sluice", replication: Bool = false) throws {
        self.url = url
        // Defaults first, the URL last: what the URL says wins (libpq keeps the last value).
        let settings: [(String, String)] = [
            ("connect_timeout", String(connectTimeoutSeconds)),
            ("keepalives", "1"), ("keepalives_idle", "5"), ("keepalives_interval", "2"), ("keepalives_count", "3"),
            ("tcp_user_timeout", "15000"),
            ("application_name", applicationName),
            ("dbname", url.connectionString),
        ] + (replication ? [("replication", "database")] : [])
        conn = PostgresConnection.withCStrings(settings.map(\.0)) { keys in
            PostgresConnection.withCStrings(settings.map(\.1)) { values in
                PQconnectdbParams(keys, values, 1)
            }
        }
        guard let conn, PQstatus(conn) == CONNECTION_OK else {
            let message = conn.map { PostgresConnection.trim(String(cString: PQerrorMessage($0))) } ?? "out of memory"
            PQfinish(conn)
            conn = nil
            throw PostgresError(message: "cannot connect to \(url.redacted): \(message)", sqlState: nil, connectionLost: true)
        }
        // Notices ("relation already exists, skipping") are not errors: drop them.
        PQsetNoticeProcessor(conn, { _, _ in }, nil)
    }

    deinit { PQfinish(conn) }

    /// False once libpq has seen the connection break.
    public var isHealthy: Bool { conn.map { PQstatus($0) == CONNECTION_OK } ?? false }

    /// Runs one statement (or several without parameters) and returns its result.
    @discardableResult
    public func execute(_ sql: String, _ parameters: [PostgresValue] = []) throws -> PostgresResult {
        guard let conn else { throw lost("not connected") }
        let result: OpaquePointer?
        if parameters.isEmpty {
            result = PQexec(conn, sql)
        } else {
            result = try PostgresConnection.withParameters(parameters) { values, lengths, formats in
                PQexecParams(conn, sql, Int32(parameters.count), nil, values, lengths, formats, 0)
            }
        }
        return try check(result, sql: sql)
    }

    /// Runs `body` in a transaction: committed if it returns, rolled back if it throws.
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN")
        do {
            let value = try body()
            try execute("COMMIT")
            return value
        } catch {
            if isHealthy { _ = try? execute("ROLLBACK") }
            throw error
        }
    }

    /// `COPY table (columns) FROM STDIN` in the binary format: `body` appends rows to a buffer
    /// that is sent in chunks. Returns the rows copied.
    @discardableResult
    public func copyIn(into table: String, columns: [String], _ body: (inout PostgresCopyBuffer) throws -> Void) throws -> Int {
        let sql = "COPY \"\(table)\" (\(columns.map { "\"\($0)\"" }.joined(separator: ", "))) FROM STDIN (FORMAT binary)"
        guard let conn else { throw lost("not connected") }
        guard let start = PQexec(conn, sql) else { throw lost(currentError) }
        let status = PQresultStatus(start)
        if status != PGRES_COPY_IN {
            _ = try check(start, sql: sql)  // throws the server's error
            throw PostgresError(message: "\(sql.prefix(80)): not a COPY FROM STDIN", sqlState: nil, connectionLost: false)
        }
        PQclear(start)
        var buffer = PostgresCopyBuffer(flush: { bytes in
            let ok = bytes.withUnsafeBufferPointer { raw in
                raw.baseAddress.map { base in
                    base.withMemoryRebound(to: CChar.self, capacity: raw.count) { PQputCopyData(conn, $0, Int32(raw.count)) }
                } ?? 1
            }
            guard ok == 1 else { throw self.lost(self.currentError) }
        })
        var failure: Error?
        do {
            try body(&buffer)
            try buffer.finish()
        } catch {
            failure = error
        }
        // End the COPY either way; on a failure, abort it so the server discards the rows.
        let message: String? = failure.map { "\($0)" }
        if PQputCopyEnd(conn, message) != 1 { throw lost(currentError) }
        var copied = 0
        var serverError: PostgresError?
        while let result = PQgetResult(conn) {
            if PQresultStatus(result) == PGRES_COMMAND_OK {
                copied = Int(String(cString: PQcmdTuples(result))) ?? 0
                PQclear(result)
            } else if serverError == nil {
                do { _ = try check(result, sql: sql) } catch let error as PostgresError { serverError = error }
            } else {
                PQclear(result)
            }
        }
        if let failure { throw failure }
        if let serverError { throw serverError }
        return copied
    }

    // MARK: private

    var currentError: String { conn.map { PostgresConnection.trim(String(cString: PQerrorMessage($0))) } ?? "not connected" }

    func lost(_ message: String) -> PostgresError {
        PostgresError(message: message, sqlState: nil, connectionLost: true)
    }

    func check(_ result: OpaquePointer?, sql: String) throws -> PostgresResult {
        guard let result else { throw lost(currentError) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
            return PostgresResult(result)
        default:
            let field = PQresultErrorField(result, Int32(UInt8(ascii: "C")))  // PG_DIAG_SQLSTATE
            let state = field.map { String(cString: $0) }
            var message = PostgresConnection.trim(String(cString: PQresultErrorMessage(result)))
            if message.isEmpty { message = currentError }
            PQclear(result)
            // No SQLSTATE means libpq itself failed (the server closed the socket, …): libpq does
            // not always mark the connection bad at once, so treat it as lost and reconnect.
            let gone = conn.map { PQstatus($0) != CONNECTION_OK } ?? true
            throw PostgresError(message: "\(message) (in: \(sql.prefix(100)))", sqlState: state, connectionLost: gone || state == nil)
        }
    }

    static func trim(_ text: String) -> String {
        var s = Substring(text)
        while let last = s.last, last == "\n" || last == " " { s = s.dropLast() }
        return s.split(separator: "\n").joined(separator: "; ")
    }

    private static func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
        let copies = strings.map { strdup($0) }
        defer { copies.forEach { free($0) } }
        var pointers: [UnsafePointer<CChar>?] = copies.map { $0.map { UnsafePointer($0) } }
        pointers.append(nil)
        return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }  // never empty: the nil terminator
    }

    private static func withParameters<R>(_ parameters: [PostgresValue],
                                          _ body: (UnsafePointer<UnsafePointer<CChar>?>, UnsafePointer<Int32>, UnsafePointer<Int32>) -> R) throws -> R {
        var storage: [UnsafeMutablePointer<CChar>?] = []
        var lengths: [Int32] = []
        var formats: [Int32] = []
        defer { storage.forEach { free($0) } }
        for value in parameters {
            switch value {
            case .null:
                storage.append(nil); lengths.append(0); formats.append(0)
            case .int(let v):
                storage.append(strdup(String(v))); lengths.append(0); formats.append(0)
            case .bool(let b):
                storage.append(strdup(b ? "t" : "f")); lengths.append(0); formats.append(0)
            case .text(let s):
                if s.utf8.contains(0) {
                    throw PostgresError(message: "a text parameter contains a NUL byte, which PostgreSQL text cannot hold", sqlState: nil, connectionLost: false)
                }
                storage.append(strdup(s)); lengths.append(0); formats.append(0)
            case .bytes(let b):
                guard let copy = malloc(max(1, b.count)) else {
                    throw PostgresError(message: "out of memory for a \(b.count)-byte parameter", sqlState: nil, connectionLost: false)
                }
                b.withUnsafeBytes { raw in
                    if let base = raw.baseAddress { copy.copyMemory(from: base, byteCount: raw.count) }
                }
                let m = copy.assumingMemoryBound(to: CChar.self)
                storage.append(m); lengths.append(Int32(b.count)); formats.append(1)
            }
        }
        let pointers: [UnsafePointer<CChar>?] = storage.map { $0.map { UnsafePointer($0) } }
        return pointers.withUnsafeBufferPointer { p in
            lengths.withUnsafeBufferPointer { l in
                formats.withUnsafeBufferPointer { f in
                    body(p.baseAddress!, l.baseAddress!, f.baseAddress!)  // non-empty: callers pass parameters
                }
            }
        }
    }
}

/// A query's rows, in text format.
public final class PostgresResult {
    private let result: OpaquePointer

    init(_ result: OpaquePointer) { self.result = result }
    deinit { PQclear(result) }

    public var count: Int { Int(PQntuples(result)) }
    /// Rows changed by an INSERT, UPDATE or DELETE.
    public var affectedRows: Int { Int(String(cString: PQcmdTuples(result))) ?? 0 }

    public func isNull(_ row: Int, _ column: Int) -> Bool { PQgetisnull(result, Int32(row), Int32(column)) != 0 }

    public func string(_ row: Int, _ column: Int) -> String? {
        guard !isNull(row, column), let value = PQgetvalue(result, Int32(row), Int32(column)) else { return nil }
        return String(cString: value)
    }

    public func int64(_ row: Int, _ column: Int) throws -> Int64 {
        guard let text = string(row, column), let value = Int64(text) else {
            throw PostgresError(message: "row \(row) column \(column): expected an integer, got \(string(row, column) ?? "NULL")", sqlState: nil, connectionLost: false)
        }
        return value
    }

    public func bool(_ row: Int, _ column: Int) -> Bool { string(row, column) == "t" }

    /// A `bytea` column (hex text on the wire).
    public func bytes(_ row: Int, _ column: Int) -> [UInt8] {
        guard !isNull(row, column), let value = PQgetvalue(result, Int32(row), Int32(column)) else { return [] }
        var length = 0
        guard let raw = value.withMemoryRebound(to: UInt8.self, capacity: 1, { PQunescapeBytea($0, &length) }) else { return [] }
        defer { PQfreemem(raw) }
        return [UInt8](UnsafeBufferPointer(start: raw, count: length))
    }
}

/// Rows for `COPY … FROM STDIN (FORMAT binary)`: each row a field count, each field its length
/// and its value in network byte order. The server parses no text, which makes a COPY of numeric
/// rows several times cheaper for it than the text format. Each value's type must be the column's
/// exactly (`int32` for `integer`, `int` for `bigint`, `double` for `double precision`, `text`).
/// Sent to the server every 256 KiB.
public struct PostgresCopyBuffer {
    private var bytes: [UInt8] = []
    private let flush: ([UInt8]) throws -> Void
    /// Where the current row's field count goes, and the fields so far.
    private var rowStart = 0
    private var fieldsInRow: UInt16 = 0

    /// The binary COPY header: signature, flags, header extension length.
    static let header: [UInt8] = Array("PGCOPY\n".utf8) + [0xFF, 0x0D, 0x0A, 0x00] + [0, 0, 0, 0] + [0, 0, 0, 0]

    init(flush: @escaping ([UInt8]) throws -> Void) {
        self.flush = flush
        bytes.reserveCapacity(1 << 18)
        bytes.append(contentsOf: Self.header)
        beginRow()
    }

    private mutating func beginRow() {
        rowStart = bytes.count
        fieldsInRow = 0
        bytes.append(0)
        bytes.append(0)
    }

    private mutating func append<T: FixedWidthInteger>(bigEndian value: T) {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
    }

    public mutating func int(_ value: Int64) {
        fieldsInRow += 1
        append(bigEndian: Int32(8))
        append(bigEndian: value)
    }

    public mutating func int32(_ value: Int32) {
        fieldsInRow += 1
        append(bigEndian: Int32(4))
        append(bigEndian: value)
    }

    public mutating func double(_ value: Double) {
        fieldsInRow += 1
        append(bigEndian: Int32(8))
        append(bigEndian: value.bitPattern)
    }

    /// UTF-8 text; a NUL (which PostgreSQL text cannot hold) becomes U+FFFD.
    public mutating func text(_ value: String) {
        fieldsInRow += 1
        let lengthAt = bytes.count
        append(bigEndian: Int32(0))
        let start = bytes.count
        for byte in value.utf8 {
            if byte == 0 { bytes.append(contentsOf: [0xEF, 0xBF, 0xBD]) } else { bytes.append(byte) }
        }
        let length = UInt32(bytes.count - start)
        for i in 0..<4 { bytes[lengthAt + i] = UInt8(truncatingIfNeeded: length >> (24 - 8 * i)) }
    }

    /// `boolean`: one byte.
    public mutating func bool(_ value: Bool) {
        fieldsInRow += 1
        append(bigEndian: Int32(1))
        bytes.append(value ? 1 : 0)
    }

    /// `timestamptz` (and `timestamp`): microseconds since 2000-01-01 00:00:00 UTC.
    public mutating func timestamp(microsecondsSince2000 value: Int64) { int(value) }

    /// `numeric` from decimal text `-?digits[.digits]` (no exponent); the fraction digits given
    /// are its display scale. On the wire: digit count, weight (of the first base-10000 digit),
    /// sign, display scale, then the base-10000 digits, grouped from the decimal point.
    public mutating func numeric(_ text: String) {
        var chars = Array(text.utf8)
        var negative = false
        if chars.first == UInt8(ascii: "-") {
            negative = true
            chars.removeFirst()
        }
        let dot = chars.firstIndex(of: UInt8(ascii: "."))
        var whole = Array(chars[..<(dot ?? chars.count)])
        var fraction = dot.map { Array(chars[($0 + 1)...]) } ?? []
        let scale = fraction.count
        while whole.count % 4 != 0 { whole.insert(UInt8(ascii: "0"), at: 0) }
        while fraction.count % 4 != 0 { fraction.append(UInt8(ascii: "0")) }
        func group(_ digits: ArraySlice<UInt8>) -> Int16 {
            digits.reduce(Int16(0)) { $0 * 10 + Int16($1 &- 48) }
        }
        var digits: [Int16] = []
        for i in stride(from: 0, to: whole.count, by: 4) { digits.append(group(whole[i..<(i + 4)])) }
        var weight = whole.count / 4 - 1
        for i in stride(from: 0, to: fraction.count, by: 4) { digits.append(group(fraction[i..<(i + 4)])) }
        while digits.first == 0 {
            digits.removeFirst()
            weight -= 1
        }
        while digits.last == 0 { digits.removeLast() }
        if digits.isEmpty {
            weight = 0
            negative = false
        }
        fieldsInRow += 1
        append(bigEndian: Int32(8 + 2 * digits.count))
        append(bigEndian: Int16(digits.count))
        append(bigEndian: Int16(weight))
        append(bigEndian: UInt16(negative ? 0x4000 : 0))
        append(bigEndian: Int16(scale))
        for d in digits { append(bigEndian: d) }
    }

    /// NULL: a field of length -1.
    public mutating func null() {
        fieldsInRow += 1
        append(bigEndian: Int32(-1))
    }

    public mutating func endRow() throws {
        bytes[rowStart] = UInt8(fieldsInRow >> 8)
        bytes[rowStart + 1] = UInt8(truncatingIfNeeded: fieldsInRow)
        if bytes.count >= 1 << 18 { try flushNow() }
        beginRow()
    }

    /// Sends what is buffered; at the end, the trailer (-1 in place of a field count) first.
    mutating func finish() throws {
        bytes.removeLast(2)  // the unused count of a row never begun
        append(bigEndian: Int16(-1))
        try flushNow()
    }

    private mutating func flushNow() throws {
        guard !bytes.isEmpty else { return }
        try flush(bytes)
        bytes.removeAll(keepingCapacity: true)
    }
}
