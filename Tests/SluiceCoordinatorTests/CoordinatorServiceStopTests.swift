import SluiceCoordinator
import Synchronization
import Testing

/// A ledger that counts writes (and fails the test if two happen at once).
final class CountingLedger: LeaseLedger, Sendable {
    private let state = Mutex<(records: [Int: (Int64, String?)], writes: Int, inBatch: Bool)>(([:], 0, false))
    var writes: Int { state.withLock { $0.writes } }
    func load() throws -> [(partition: Int, epoch: Int64, owner: String?)] {
        state.withLock { $0.records.map { ($0.key, $0.value.0, $0.value.1) } }
    }
    func save(partition: Int, epoch: Int64, owner: String?) throws {
        state.withLock {
            $0.records[partition] = (epoch, owner)
            $0.writes += 1
        }
    }
    func batch(_ body: () throws -> Void) throws {
        let overlapping = state.withLock { s -> Bool in
            defer { s.inBatch = true }
            return s.inBatch
        }
        #expect(!overlapping, "two ledger writes at once")
        defer { state.withLock { $0.inBatch = false } }
        try body()
    }
    func fence(leaderEpoch: Int64) throws {}
}

/// A coordinator that steps down stops its service and, when it leads again, starts a new one on
/// the same ledger. The stopped service must never write to it again.
@Suite struct CoordinatorServiceStopTests {
    @Test func aStoppedServiceNeverWritesTheLedgerAgain() async throws {
        let ledger = CountingLedger()
        let service = try CoordinatorService(partitions: 4, leaseTTLMs: 200, ledger: ledger, log: { _ in })
        _ = try await service.openSession("a")
        #expect(ledger.writes == 4)  // every partition granted to a
        await service.startTicker(intervalMs: 10)
        await service.stop()
        let after = ledger.writes
        // Everything that could write: a late session end, messages, a new session, the ticker
        // (a's lease would lapse after 200 ms and be written as orphaned).
        await service.leave("a")
        await #expect(throws: ServiceStopped.self) {
            try await service.handle("a", .failed(partition: 0, epoch: 1, reason: "test"))
        }
        await #expect(throws: ServiceStopped.self) {
            try await service.renew("b", progress: [], eventsPerSecond: 0)
        }
        await #expect(throws: ServiceStopped.self) { try await service.openSession("b") }
        try await Task.sleep(for: .milliseconds(400))
        #expect(ledger.writes == after)
    }
}
