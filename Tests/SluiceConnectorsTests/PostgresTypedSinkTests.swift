// The typed output through the PostgreSQL sink (binary COPY of numeric, timestamptz, boolean…),
// transactional and upsert, read back as RecordText rows. Runs only when SLUICE_TEST_POSTGRES_URL
// names a server (scripts/postgres-test-server); the end-to-end suite covers the rest.

import Foundation
import SluiceConnectors
import SluiceCore
import SluiceJob
import SluiceStorage
import Testing

private let postgresURL = ProcessInfo.processInfo.environment["SLUICE_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }

@Suite("Typed PostgreSQL sink", .enabled(if: postgresURL != nil, "SLUICE_TEST_POSTGRES_URL is not set"))
struct PostgresTypedSinkTests {
    /// A new database on the test server (`postgres://…/NAME`, the base URL has no query).
    static func freshDatabase(_ label: String) throws -> String {
        guard let base = postgresURL, let slash = base.range(of: "/", options: .backwards), !base.contains("?") else {
            throw SinkError("SLUICE_TEST_POSTGRES_URL must be postgres://USER@HOST:PORT/DB")
        }
        let name = "sluice_typed_\(label)_\(UUID().uuidString.prefix(8).lowercased())"
        try PostgresConnection(url: PostgresURL(base)).execute("CREATE DATABASE \(name)")
        return String(base[..<slash.upperBound]) + name
    }

    @Test("Transactional and upsert: typed columns read back as RecordText rows", arguments: ["transactional", "upsert"])
    func typedRows(mode: String) async throws {
        let url = try Self.freshDatabase(mode) + "?mode=\(mode)"
        let sink = try SinkFactory.open(uri: url, job: TypedOutput.job)
        let store = try PostgresCheckpointStore(url: PostgresURL(sink.defaultStatePath), logger: .silent)
        try await store.bind(job: "typed", partitions: 2, writer: sink)
        #expect(try await store.claim(partition: 1, epoch: 1))
        try await TypedOutput.commit(TypedOutput.output(), seq: 1, sink: sink, store: store)
        if mode == "upsert" {  // a replay writes the same rows again: still one of each
            try await TypedOutput.commit(TypedOutput.output(), seq: 2, sink: sink, store: store)
        }
        let contents = try SinkReader.read(uri: url, job: TypedOutput.job)
        #expect(contents.rows.sorted() == TypedOutput.texts.sorted())
        #expect(contents.duplicates.sorted { $0.offset < $1.offset } == TypedOutput.duplicateEntries(partition: 1))
        #expect(contents.deadLetters == [RejectedEntry(partition: 1, offset: 3, line: "x,\"multi\nline\"")])

        let conn = try PostgresConnection(url: PostgresURL(sink.defaultStatePath))
        let types = try conn.execute("""
            SELECT format_type(atttypid, atttypmod) FROM pg_attribute
            WHERE attrelid = 'typed'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum
            """)
        #expect((0..<types.count).compactMap { types.string($0, 0) } == [
            "bigint", "text", "boolean", "bigint", "numeric(38,2)", "numeric(20,0)", "timestamp with time zone",
            "double precision", "text", "integer", "bigint"])
        // The values as PostgreSQL itself sees them.
        let row = try conn.execute("SELECT sum_amount::text, first_big::text, max_ts AT TIME ZONE 'UTC' FROM typed WHERE window_start_ms = 0")
        #expect(row.string(0, 0) == "-12.34" && row.string(0, 1) == "18446744073709551610"
                && row.string(0, 2) == "1969-12-30 23:59:59.999")
    }
}
