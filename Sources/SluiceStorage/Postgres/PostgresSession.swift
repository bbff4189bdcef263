import Logging
import SluiceCore
#if canImport(Glibc)
import Glibc
#endif

/// A connection that comes back by itself: `run` executes a unit of work (usually one
/// transaction) and, when the connection breaks or the server is restarting, reconnects with
/// exponential backoff and jitter and runs the work again, for at most `retryLimit`. The work must
/// be safe to run twice: it is told whether an earlier attempt may have committed (`retrying`).
/// Blocking, the retry sleep included: call it only from a thread that may block, i.e. from an
/// actor on a `QueueExecutor` of its own (every store, ledger and leadership store does), never
/// from the cooperative pool. Not Sendable: one owner at a time.
public final class PostgresSession {
    public let url: PostgresURL
    public var retryLimit: Duration
    private var connection: PostgresConnection?
    private let logger: Logger
    private let name: String

    public init(url: PostgresURL, name: String, retryLimit: Duration = .seconds(120), logger: Logger) {
        self.url = url
        self.name = name
        self.retryLimit = retryLimit
        self.logger = logger
    }

    /// Connects now (so that a wrong URL or password fails at start, not at the first commit).
    public func connect() throws {
        _ = try run { _, _ in }
    }

    @discardableResult
    public func run<T>(_ work: (PostgresConnection, _ retrying: Bool) throws -> T) throws -> T {
        let start = ContinuousClock.now
        var attempt = 0
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
                    logger.notice("\(name): PostgreSQL at \(url.redacted) is back after \(attempt) retries (\(PostgresSession.seconds(ContinuousClock.now - start)) s)")
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
                // Sluice's one retry rule, never past the limit.
                let left = max(0, (retryLimit - waited).milliseconds)
                let sleepMs = min(PostgresSession.backoff.delay(failures: attempt), left)
                logger.warning("\(name): PostgreSQL unavailable (\(error)); retry \(attempt) in \(sleepMs) ms (giving up after \(Int(retryLimit.seconds)) s)")
                // Blocks this thread: the session runs only on a store's own executor (see above).
                usleep(UInt32(sleepMs) * 1_000)
            }
        }
    }

    /// 200 ms doubling to 2 s, each wait between half and all of its step.
    static let backoff = Backoff(baseMs: 200, capMs: 2_000)

    /// One decimal, without Foundation: 4.25 s -> "4.2".
    private static func seconds(_ d: Duration) -> String {
        let tenths = d.milliseconds / 100
        return "\(tenths / 10).\(tenths % 10)"
    }
}
