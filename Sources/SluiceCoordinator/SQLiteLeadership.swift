import Foundation
import SluiceStorage

/// The leadership lease in the coordinators' shared SQLite file (coordinators on one machine). Its
/// own connection, on a queue of its own (SQLite calls block): the leadership loop runs beside
/// the coordinator's service. Times are this machine's wall clock, which every coordinator
/// sharing the file reads.
public actor SQLiteLeadership: LeadershipStore {
    private let db: SQLiteDatabase
    private let executor = QueueExecutor(label: "sluice.coordinator-leadership")
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    public init(path: String) async throws {
        db = try SQLiteDatabase(path: path)
        // From here on the initializer runs on the store's executor.
        try SQLiteCoordinatorSchema.migrate(db)
    }

    private var nowMs: Int64 { Int64(Date().timeIntervalSince1970 * 1_000) }

    public func tryAcquire(candidate: LeaderCandidate, ttlMs: Int64) throws -> Int64? {
        try db.transaction {
                let now = nowMs
                let current = try row()
                if let current, current.expiresMs >= now,
                   !candidate.mayTakeOver(holder: current.holder, instance: current.instance) { return nil }
                let epoch = (current?.epoch ?? 0) + 1
                try db.prepare("""
                    INSERT INTO coordinator_leader(id, holder, instance, epoch, expires_ms) VALUES (1, ?, ?, ?, ?)
                    ON CONFLICT(id) DO UPDATE SET holder = excluded.holder, instance = excluded.instance,
                        epoch = excluded.epoch, expires_ms = excluded.expires_ms
                    """).bind(1, candidate.name).bind(2, candidate.instance).bind(3, epoch).bind(4, now + ttlMs).run()
                return epoch
        }
    }

    public func renew(candidate: LeaderCandidate, epoch: Int64, ttlMs: Int64) throws -> Bool {
        try db.prepare("UPDATE coordinator_leader SET expires_ms = ? WHERE id = 1 AND instance = ? AND epoch = ?")
            .bind(1, nowMs + ttlMs).bind(2, candidate.instance).bind(3, epoch).run()
        return db.changes == 1
    }

    public func resign(candidate: LeaderCandidate, epoch: Int64) throws {
        try db.prepare("UPDATE coordinator_leader SET expires_ms = 0 WHERE id = 1 AND instance = ? AND epoch = ?")
            .bind(1, candidate.instance).bind(2, epoch).run()
    }

    public func holder() throws -> (candidate: String, epoch: Int64)? {
        try row().map { ($0.holder, $0.epoch) }
    }

    private func row() throws -> (holder: String, instance: String, epoch: Int64, expiresMs: Int64)? {
        let stmt = try db.prepare("SELECT holder, instance, epoch, expires_ms FROM coordinator_leader WHERE id = 1")
        defer { stmt.reset() }
        guard try stmt.step() else { return nil }
        return (stmt.string(0), stmt.string(1), stmt.int64(2), stmt.int64(3))
    }
}
