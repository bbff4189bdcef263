import SluiceCore
#if canImport(Glibc)
import Glibc
#endif

/// A connection that comes back by itself: `run` executes a unit of work (usually one
/// transaction) and, when the connection breaks or the server is restarting, reconnects with
/// exponential backoff and jitter and runs the work again, for at most `retryLimit`. The work must
/// be safe to run twice: it is told whether an earlier attempt may have committed (`retrying`).
/// Blocking: call it only from a thread that may block (a store's own serial executor).
public final class PostgresSession {
    public let url: PostgresURL
    public var retryLimit: Duration
    private var connection: PostgresConnection?
    private let log: @Sendable (String) -> Void
    private let name: String

    public init(url: PostgresURL, name: String, retryLimit: Duration = .seconds(120), log: @escaping @Sendable (String) -> Void) {
        self.url = url
        self.name = name
        self.retryLimit = retryLimit
        self.log = log
    }

    /// Connects now (so that a wrong URL or password fails at start, not at the first commit).
    public func connect() throws {
        _ = try run { _, _ in }
    }

    @discardableResult
    public func run<T>(_ work: (PostgresConnection, _ retrying: Bool) throws -> T) throws -> T {
        let start = ContinuousClock.now
        var attempt = 0
        var backoffMs = 100
        while true {
            do {
                let conn: PostgresConnection
                if let existing = connection, existing.isHealthy {
                    conn = existing
                } else {
                    connection = nil
                    conn = try PostgresConnection(url: url)
                    connection = conn
                }
                let value = try work(conn, attempt > 0)
                if attempt > 0 {
                    log("\(name): PostgreSQL at \(url.redacted) is back after \(attempt) retries (\(PostgresSession.seconds(ContinuousClock.now - start)) s)")
                }
                return value
            } catch let error as PostgresError where error.isTransient {
                if error.connectionLost || !(connection?.isHealthy ?? false) { connection = nil }
                let waited = ContinuousClock.now - start
                if waited >= retryLimit {
                    throw PostgresError(
                        message: "\(name): gave up after \(PostgresSession.seconds(waited)) s of retries against \(url.redacted): \(error.message)",
                        sqlState: error.sqlState, connectionLost: error.connectionLost)
                }
                attempt += 1
                // Full backoff plus up to 50 % jitter, capped at 2 s, and never past the limit.
                let jittered = backoffMs + Int.random(in: 0...(backoffMs / 2))
                let left = max(0, Int((retryLimit - waited).milliseconds))
                let sleepMs = min(jittered, left)
                log("\(name): PostgreSQL unavailable (\(error)); retry \(attempt) in \(sleepMs) ms (giving up after \(Int(retryLimit.seconds)) s)")
                usleep(UInt32(sleepMs) * 1_000)
                backoffMs = min(backoffMs * 2, 2_000)
            }
        }
    }

    /// One decimal, without Foundation: 4.25 s -> "4.2".
    private static func seconds(_ d: Duration) -> String {
        let tenths = d.milliseconds / 100
        return "\(tenths / 10).\(tenths % 10)"
    }
}
