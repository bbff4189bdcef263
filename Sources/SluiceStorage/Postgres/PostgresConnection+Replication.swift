import CLibPQ
import SluiceCore
#if canImport(Glibc)
import Glibc
#endif

/// The streaming half of logical replication on a `replication: true` connection: START_REPLICATION
/// turns the connection into a copy-both stream of messages from the server (XLogData `w`,
/// keepalive `k`), read without blocking, and standby status updates (`r`) going back.
extension PostgresConnection {
    /// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01), in which the protocol counts.
    public static let postgresEpochOffsetMicros: Int64 = 946_684_800_000_000

    /// `START_REPLICATION SLOT slot LOGICAL lsn` with the pgoutput plugin (protocol version 1).
    public func startLogicalReplication(slot: String, publication: String, from lsn: Int64) throws {
        guard let conn else { throw lost("not connected") }
        let sql = "START_REPLICATION SLOT \"\(slot)\" LOGICAL \(PostgresConnection.lsnText(lsn)) (proto_version '1', publication_names '\"\(publication)\"')"
        guard let result = PQexec(conn, sql) else { throw lost(currentError) }
        guard PQresultStatus(result) == PGRES_COPY_BOTH else {
            _ = try check(result, sql: sql)  // throws the server's error
            throw PostgresError(message: "\(sql.prefix(100)): the server did not start streaming", sqlState: nil, connectionLost: true)
        }
        PQclear(result)
    }

    /// Calls `body` with the next message of the stream, if one has arrived; returns false when
    /// none is waiting. Throws when the stream ends or the connection breaks.
    public func nextReplicationMessage(_ body: (UnsafeRawBufferPointer) throws -> Void) throws -> Bool {
        guard let conn else { throw lost("not connected") }
        var buffer: UnsafeMutablePointer<CChar>?
        var n = PQgetCopyData(conn, &buffer, 1)
        if n == 0 {
            guard PQconsumeInput(conn) == 1 else { throw lost(currentError) }
            n = PQgetCopyData(conn, &buffer, 1)
        }
        if n > 0, let buffer {
            defer { PQfreemem(buffer) }
            try body(UnsafeRawBufferPointer(start: buffer, count: Int(n)))
            return true
        }
        if n == 0 { return false }
        // -1: the server ended the stream; -2: an error. Either way the stream is over.
        var message = currentError
        while let result = PQgetResult(conn) {
            if let text = PQresultErrorMessage(result), text.pointee != 0 { message = PostgresConnection.trim(String(cString: text)) }
            PQclear(result)
        }
        throw PostgresError(message: "replication stream ended: \(message)", sqlState: nil, connectionLost: true)
    }

    /// Waits up to `milliseconds` for the server to send something.
    public func waitForReplicationData(milliseconds: Int32) {
        guard let conn else { return }
        var fd = pollfd(fd: PQsocket(conn), events: Int16(POLLIN), revents: 0)
        _ = poll(&fd, 1, milliseconds)
    }

    /// A standby status update: `received` is informational for a logical slot; `flushed` is what
    /// the slot may forget (its confirmed_flush_lsn moves up to it, never down).
    public func sendStandbyStatus(received: Int64, flushed: Int64, nowMicros: Int64, replyRequested: Bool = false) throws {
        guard let conn else { throw lost("not connected") }
        var message: [UInt8] = [UInt8(ascii: "r")]
        message.reserveCapacity(34)
        for value in [received, flushed, flushed, nowMicros - PostgresConnection.postgresEpochOffsetMicros] {
            withUnsafeBytes(of: UInt64(bitPattern: value).bigEndian) { message.append(contentsOf: $0) }
        }
        message.append(replyRequested ? 1 : 0)
        let sent = message.withUnsafeBufferPointer { raw in
            raw.baseAddress!.withMemoryRebound(to: CChar.self, capacity: raw.count) { PQputCopyData(conn, $0, Int32(raw.count)) }  // non-empty
        }
        guard sent == 1, PQflush(conn) == 0 else { throw lost(currentError) }
    }

    /// `X/Y`, the text form of an LSN.
    public static func lsnText(_ lsn: Int64) -> String {
        let v = UInt64(bitPattern: lsn)
        return String(v >> 32, radix: 16, uppercase: true) + "/" + String(v & 0xFFFF_FFFF, radix: 16, uppercase: true)
    }
}
