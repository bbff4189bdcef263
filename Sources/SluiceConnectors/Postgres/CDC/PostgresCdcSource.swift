import Logging
import SluiceCore
import SluiceStorage
#if canImport(Glibc)
import Glibc
#endif

/// One partition of a `postgres-cdc://` source: its own replication slot, streamed with pgoutput.
///
/// - Position: an LSN. Every transaction that committed below it has been handed out (see
///   `CdcStreamDecoder`). Streaming restarts there (`START_REPLICATION … LOGICAL position`).
/// - Confirmation: the slot's confirmed flush position (what PostgreSQL may forget) is only ever
///   a position that a committed checkpoint holds, and one checkpoint behind the newest: the
///   runner reports each commit through `committed(position:)`, and the source confirms the
///   position of the commit before (the first time, the one it was opened at). A crash replays
///   from the newest checkpoint; a corrupt newest checkpoint falls back to the one before it
///   (the store keeps two), whose position the slot still holds. Status updates go out at least every second
///   (and when the server asks), also while the table is idle, so the walsender never times out
///   and an idle partition's confirmed position keeps following its checkpoints.
/// - Failures: a broken stream (or a slot still held by its previous owner's dying connection)
///   is reopened at the position with backoff and jitter, one log line per retry, for at most
///   `retryLimit`; the open transaction is dropped and comes again.
public final class PostgresCdcSource: PartitionSource {
    public var position: Int64 { decoder.position }
    public var remaining: Int64? { nil }
    public var positionCountsLines: Bool { false }
    public private(set) var lastReadWasEmpty = false

    private let spec: CdcSpec
    private let slot: String
    private let name: String
    private let decoder: CdcStreamDecoder
    private let logger: Logger
    private var stream: PostgresConnection?
    /// What the slot may forget: the position of the committed checkpoint before the newest.
    private var confirmed: Int64 = 0
    /// The newest committed checkpoint's position.
    private var newestCommitted: Int64
    private var lastStatus = ContinuousClock.now - .seconds(60)
    private var sentConfirmed: Int64 = -1
    private var retry: (attempt: Int, since: ContinuousClock.Instant, due: ContinuousClock.Instant)?
    /// The wait before each reopen (Sluice's one retry rule).
    private static let backoff = Backoff(baseMs: 100, capMs: 2_000)
    public var retryLimit: Duration = .seconds(120)
    /// Time one `read` may wait for a transaction to complete.
    private let readWait: Duration = .milliseconds(50)
    /// Hand out at most about this much per read.
    private let readBytes = 4 << 20

    public init(spec: CdcSpec, mode: CdcStreamDecoder.Mode, partition: Int, position: Int64,
                logger: Logger = .silent) throws {
        self.spec = spec
        slot = spec.slot(partition: partition)
        name = "cdc source, partition \(partition) (slot \(slot))"
        self.logger = logger
        decoder = CdcStreamDecoder(table: spec.table, keyColumn: spec.keyColumn, partitions: spec.partitions,
                                   partition: partition, mode: mode, position: position)
        newestCommitted = position  // it came from a committed checkpoint (or is 0: nothing yet)
        let setup = PostgresSession(url: spec.url, name: name, logger: logger)
        try setup.run { conn, _ in try CdcSetup.ensure(spec, slot: slot, on: conn, logger: logger) }
        do {
            try openStream()
        } catch let error as PostgresError where PostgresCdcSource.isTransient(error) {
            try scheduleRetry(after: error)  // e.g. the slot's previous owner is still connected
        }
    }

    deinit {
        // Released or moved: tell the server the last committed position before hanging up.
        sentConfirmed = -1
        try? sendStatusIfDue()
    }

    public func committed(position: Int64) {
        if newestCommitted > confirmed { confirmed = newestCommitted }
        if position > newestCommitted { newestCommitted = position }
    }

    public func read(_ body: (UnsafeRawBufferPointer) -> Void) throws -> Bool {
        if stream == nil {
            guard let retry, ContinuousClock.now >= retry.due else { return idle() }
            do {
                try openStream()
                logger.info("\(name): PostgreSQL at \(spec.url.redacted) is back after \(retry.attempt) retries (\(PostgresCdcSource.seconds(ContinuousClock.now - retry.since)) s)")
                self.retry = nil
            } catch let error as PostgresError where PostgresCdcSource.isTransient(error) {
                try scheduleRetry(after: error)
                return idle()
            }
        }
        do {
            try receive()
            try sendStatusIfDue()
        } catch let error as PostgresError where PostgresCdcSource.isTransient(error) {
            stream = nil
            decoder.discardOpenTransaction()
            try scheduleRetry(after: error)
        }
        // Whole transactions only (those completed before a failure included).
        let handed = decoder.take(body)
        lastReadWasEmpty = handed == 0
        return true  // a change stream never ends
    }

    /// Reads frames until whole transactions are ready and nothing more is waiting (or the wait is
    /// over, or enough is ready), or the server asks for a status update.
    private func receive() throws {
        guard let stream else { return }
        let deadline = ContinuousClock.now + readWait
        while true {
            let got = try stream.nextReplicationMessage { try decoder.handle(frame: $0) }
            if decoder.replyRequested { return }
            let ready = decoder.readyBytes
            if got {
                // A busy table: hand on what is whole once there is plenty, or the wait is over.
                if ready >= readBytes || (ready > 0 && ContinuousClock.now >= deadline) { return }
                continue
            }
            if ready > 0 { return }
            let left = deadline - ContinuousClock.now
            if left <= .zero { return }
            stream.waitForReplicationData(milliseconds: Int32(max(1, left.milliseconds)))
        }
    }

    private func sendStatusIfDue() throws {
        guard let stream else { return }
        let now = ContinuousClock.now
        guard decoder.replyRequested || confirmed != sentConfirmed || now - lastStatus >= .seconds(1) else { return }
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        let micros = Int64(time.tv_sec) * 1_000_000 + Int64(time.tv_nsec) / 1_000
        try stream.sendStandbyStatus(received: decoder.received, flushed: confirmed, nowMicros: micros)
        decoder.replyRequested = false
        sentConfirmed = confirmed
        lastStatus = now
    }

    private func openStream() throws {
        let conn = try PostgresConnection(url: spec.url, applicationName: "sluice \(slot)", replication: true)
        try conn.startLogicalReplication(slot: slot, publication: spec.publication, from: decoder.position)
        stream = conn
        sentConfirmed = -1  // tell the new walsender where we stand at once
    }

    private func idle() -> Bool {
        lastReadWasEmpty = true
        return true
    }

    private func scheduleRetry(after error: PostgresError) throws {
        let now = ContinuousClock.now
        var r = retry ?? (attempt: 0, since: now, due: now)
        let waited = now - r.since
        if waited >= retryLimit {
            throw SourceError("\(name): gave up after \(PostgresCdcSource.seconds(waited)) s of retries against \(spec.url.redacted): \(error)")
        }
        r.attempt += 1
        // The partition's lane is not blocked meanwhile: `read` returns nothing until `due`.
        let sleepMs = Self.backoff.delay(failures: r.attempt)
        r.due = now + .milliseconds(sleepMs)
        retry = r
        logger.warning("\(name): PostgreSQL unavailable (\(error)); retry \(r.attempt) in \(sleepMs) ms from LSN \(PostgresConnection.lsnText(decoder.position)) (giving up after \(Int(retryLimit.seconds)) s)")
    }

    /// A lost connection, a server shutting down or starting, or the slot still active for the
    /// previous owner's connection (55006, until its walsender notices it is gone).
    static func isTransient(_ error: PostgresError) -> Bool {
        error.isTransient || error.sqlState == "55006"
    }

    private static func seconds(_ d: Duration) -> String {
        let tenths = d.milliseconds / 100
        return "\(tenths / 10).\(tenths % 10)"
    }
}
