import Foundation
import SluiceStorage

/// Where the harness reads the store's records: the commit log (polled while the suite runs) and
/// the claim log (for the checks after it). The embedded store is a SQLite file; PostgreSQL is
/// read over a connection of the harness's own, straight to the server (not through a worker's
/// fault proxy). Reads block, so they run on a queue of their own, off the cooperative pool.
// @unchecked: `connection` is confined to `queue` (every use is inside `queue.async`), which the
// compiler cannot see.
public final class CommitLogSource: @unchecked Sendable {
    public enum Location: Sendable {
        case sqlite(path: String)
        case postgres(url: String)
    }

    public let location: Location
    private let queue = DispatchQueue(label: "sluice.chaos.commit-log")
    /// Only touched on `queue`.
    private var connection: PostgresConnection?

    public init(_ location: Location) {
        self.location = location
    }

    /// The commit log, or nil while the store cannot be read (PostgreSQL restarting).
    public func read() async -> [CheckpointStore.CommitRecord]? {
        await withCheckedContinuation { continuation in
            queue.async { continuation.resume(returning: try? self.commitsNow()) }
        }
    }

    /// Both logs, for the checks; throws if the store cannot be read.
    public func logs() async throws -> (commits: [CheckpointStore.CommitRecord], claims: [CheckpointStore.ClaimRecord]) {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result { (try self.commitsNow(), try self.claimsNow()) })
            }
        }
    }

    private func commitsNow() throws -> [CheckpointStore.CommitRecord] {
        switch location {
        case .sqlite(let path):
            guard FileManager.default.fileExists(atPath: path) else { return [] }
            return try CheckpointStore.commitLog(try SQLiteDatabase(path: path))
        case .postgres:
            return try withConnection(whenNoTable: []) { try PostgresCheckpointStore.commitLog($0) }
        }
    }

    private func claimsNow() throws -> [CheckpointStore.ClaimRecord] {
        switch location {
        case .sqlite(let path):
            return try CheckpointStore.claimLog(try SQLiteDatabase(path: path))
        case .postgres:
            return try withConnection(whenNoTable: []) { try PostgresCheckpointStore.claimLog($0) }
        }
    }

    /// Runs `body` on the kept connection, made (again) when it is missing or broken. Before the
    /// workers have created the tables, a read finds none: that is `whenNoTable` (an empty log).
    private func withConnection<T>(whenNoTable: T, _ body: (PostgresConnection) throws -> T) throws -> T {
        guard case .postgres(let url) = location else { throw StoreError("not a PostgreSQL store") }
        if connection?.isHealthy != true {
            connection = try PostgresConnection(url: PostgresURL(url), connectTimeoutSeconds: 2, applicationName: "sluice-chaos")
        }
        guard let connection else { throw StoreError("no connection to \(PostgresURL.redact(url))") }
        do {
            return try body(connection)
        } catch let error as PostgresError where error.sqlState == "42P01" {
            return whenNoTable  // undefined_table: nothing committed yet
        } catch {
            if !connection.isHealthy { self.connection = nil }
            throw error
        }
    }
}
