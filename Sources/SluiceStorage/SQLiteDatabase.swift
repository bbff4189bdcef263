import CSQLite

/// A thin, synchronous SQLite connection with cached prepared statements. Not thread-safe: one
/// owner (an actor) uses it at a time.
public final class SQLiteDatabase {
    private var handle: OpaquePointer?
    private var statements: [String: SQLiteStatement] = [:]
    public let path: String

    public init(path: String) throws {
        self.path = path
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &handle, flags, nil)
        guard rc == SQLITE_OK else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close(handle)
            handle = nil
            throw SQLiteError(code: rc, message: "cannot open: \(message)", path: path)
        }
        sqlite3_busy_timeout(handle, 10_000)
    }

    deinit {
        statements.removeAll()
        sqlite3_close_v2(handle)
    }

    public func execute(_ sql: String) throws {
        var error: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &error)
        if rc != SQLITE_OK {
            let message = error.map { String(cString: $0) } ?? "code \(rc)"
            sqlite3_free(error)
            throw SQLiteError(code: rc, message: "\(message) (in: \(sql.prefix(120)))", path: path)
        }
    }

    /// A prepared statement, reset and cleared of bindings, cached by its SQL.
    public func prepare(_ sql: String) throws -> SQLiteStatement {
        if let cached = statements[sql] {
            cached.reset()
            return cached
        }
        var stmt: OpaquePointer?
        let rc = sqlite3_prepare_v2(handle, sql, -1, &stmt, nil)
        guard rc == SQLITE_OK, let stmt else {
            throw SQLiteError(code: rc, message: "\(lastError) (in: \(sql.prefix(120)))", path: path)
        }
        let statement = SQLiteStatement(stmt, database: self)
        statements[sql] = statement
        return statement
    }

    /// Runs `body` in a `BEGIN IMMEDIATE` transaction: committed if it returns, rolled back if it throws.
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    var lastError: String { String(cString: sqlite3_errmsg(handle)) }
    public var changes: Int { Int(sqlite3_changes(handle)) }
}

public final class SQLiteStatement {
    private let stmt: OpaquePointer
    private unowned let database: SQLiteDatabase

    init(_ stmt: OpaquePointer, database: SQLiteDatabase) {
        self.stmt = stmt
        self.database = database
    }

    deinit { sqlite3_finalize(stmt) }

    public func reset() {
        sqlite3_reset(stmt)
        sqlite3_clear_bindings(stmt)
    }

    @discardableResult
    public func bind(_ index: Int32, _ value: Int64) -> SQLiteStatement {
        sqlite3_bind_int64(stmt, index, value)
        return self
    }

    @discardableResult
    public func bind(_ index: Int32, _ value: Double) -> SQLiteStatement {
        sqlite3_bind_double(stmt, index, value)
        return self
    }

    @discardableResult
    public func bind(_ index: Int32, _ value: String) -> SQLiteStatement {
        // SQLITE_TRANSIENT: SQLite copies the text before the Swift string goes away. The length is
        // given, so a NUL inside the text (a dead letter's line) is kept, not an end.
        var text = value
        text.withUTF8 { bytes in
            guard let base = bytes.baseAddress else {  // empty: a pointer is still needed (nil binds NULL)
                sqlite3_bind_text(stmt, index, "", 0, unsafeBitCast(-1, to: sqlite3_destructor_type.self))
                return
            }
            let chars = UnsafeRawPointer(base).assumingMemoryBound(to: CChar.self)
            sqlite3_bind_text(stmt, index, chars, Int32(bytes.count), unsafeBitCast(-1, to: sqlite3_destructor_type.self))
        }
        return self
    }

    /// Text, or NULL for nil.
    @discardableResult
    public func bind(_ index: Int32, _ value: String?) -> SQLiteStatement {
        guard let value else {
            sqlite3_bind_null(stmt, index)
            return self
        }
        return bind(index, value)
    }

    @discardableResult
    public func bind(_ index: Int32, _ value: [UInt8]) -> SQLiteStatement {
        value.withUnsafeBytes { bytes in
            _ = sqlite3_bind_blob(stmt, index, bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32(bytes.count),
                                  unsafeBitCast(-1, to: sqlite3_destructor_type.self))
        }
        return self
    }

    /// Steps once: true while a row is available.
    public func step() throws -> Bool {
        let rc = sqlite3_step(stmt)
        switch rc {
        case SQLITE_ROW: return true
        case SQLITE_DONE:
            sqlite3_reset(stmt)
            return false
        default:
            let message = database.lastError
            sqlite3_reset(stmt)
            throw SQLiteError(code: rc, message: message, path: database.path)
        }
    }

    /// Runs a statement that returns no rows, then makes it ready for new bindings.
    public func run() throws {
        while try step() {}
        sqlite3_clear_bindings(stmt)
    }

    public func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(stmt, column) }
    public func double(_ column: Int32) -> Double { sqlite3_column_double(stmt, column) }
    public func isNull(_ column: Int32) -> Bool { sqlite3_column_type(stmt, column) == SQLITE_NULL }
    public func isReal(_ column: Int32) -> Bool { sqlite3_column_type(stmt, column) == SQLITE_FLOAT }
    public var columnCount: Int32 { sqlite3_column_count(stmt) }

    public func string(_ column: Int32) -> String {
        guard let text = sqlite3_column_text(stmt, column) else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: text, count: Int(sqlite3_column_bytes(stmt, column))), as: UTF8.self)
    }

    public func blob(_ column: Int32) -> [UInt8] {
        let count = Int(sqlite3_column_bytes(stmt, column))
        guard count > 0, let pointer = sqlite3_column_blob(stmt, column) else { return [] }
        return [UInt8](UnsafeRawBufferPointer(start: pointer, count: count))
    }
}

/// A SQLite failure, naming the database file (a user with several databases must know which one).
public struct SQLiteError: Error, CustomStringConvertible {
    public var code: Int32
    public var message: String
    public var path: String
    public var description: String {
        let hint = code == SQLITE_NOTADB ? "; it is not a SQLite database: name another file, or move this one away" : ""
        return "SQLite database '\(path)': \(message) (error \(code))\(hint)"
    }
    /// The disk or the database is full: worth retrying later, never worth losing data over.
    public var isFull: Bool { code == SQLITE_FULL }
}
