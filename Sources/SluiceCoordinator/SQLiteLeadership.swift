import Foundation
import SluiceStorage

/// The leadership lease in the coordinators' shared SQLite file (coordinators on one machine). Its
/// own connection: the leadership loop runs beside the coordinator's actor. Times are this
/// machine's wall clock, which every coordinator sharing the file reads.
public final class SQLiteLeadership: LeadershipStore, @unchecked Sendable {
    // One connection, used under `lock` (the loop and a SIGTERM resignation may overlap).
    private let db: SQLiteDatabase
    private let lock = NSLock()

    public init(path: String) throws {
        db = try SQLiteDatabase(path: path)
        try db.execute("PRAGMA journal_mode=WAL")
        try db.execute("PRAGMA synchronous=FULL")
        try SQLiteLeadership.createTable(db)
    }

    static func createTable(_ db: SQLiteDatabase) throws {
        try db.execute("""
            CREATE TABLE IF NOT EXISTS coordinator_leader(
                id INTEGER PRIMARY KEY CHECK (id = 1), holder TEXT NOT NULL, epoch INTEGER NOT NULL,
                expires_ms INTEGER NOT NULL)
            """)
    }

    private var nowMs: Int64 { Int64(Date().timeIntervalSince1970 * 1_000) }

    public func tryAcquire(candidate: String, ttlMs: Int64) throws -> Int64? {
        try locked {
            try db.transaction {
                let now = nowMs
                let current = try row()
                if let current, current.holder != candidate, current.expiresMs >= now { return nil }
                let epoch = (current?.epoch ?? 0) + 1
                try db.prepare("""
                    INSERT INTO coordinator_leader(id, holder, epoch, expires_ms) VALUES (1, ?, ?, ?)
                    ON CONFLICT(id) DO UPDATE SET holder = excluded.holder, epoch = excluded.epoch,
                        expires_ms = excluded.expires_ms
                    """).bind(1, candidate).bind(2, epoch).bind(3, now + ttlMs).run()
                return epoch
            }
        }
    }

    public func renew(candidate: String, epoch: Int64, ttlMs: Int64) throws -> Bool {
        try locked {
            try db.prepare("UPDATE coordinator_leader SET expires_ms = ? WHERE id = 1 AND holder = ? AND epoch = ?")
                .bind(1, nowMs + ttlMs).bind(2, candidate).bind(3, epoch).run()
            return db.changes == 1
        }
    }

    public func resign(candidate: String, epoch: Int64) throws {
        try locked {
            try db.prepare("UPDATE coordinator_leader SET expires_ms = 0 WHERE id = 1 AND holder = ? AND epoch = ?")
                .bind(1, candidate).bind(2, epoch).run()
        }
    }

    public func holder() throws -> (candidate: String, epoch: Int64)? {
        try locked { try row().map { ($0.holder, $0.epoch) } }
    }

    private func row() throws -> (holder: String, epoch: Int64, expiresMs: Int64)? {
        let stmt = try db.prepare("SELECT holder, epoch, expires_ms FROM coordinator_leader WHERE id = 1")
        defer { stmt.reset() }
        guard try stmt.step() else { return nil }
        return (stmt.string(0), stmt.int64(1), stmt.int64(2))
    }

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }
}
