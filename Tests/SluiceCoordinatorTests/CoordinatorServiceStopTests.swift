import Dispatch
import SluiceCoordinator
import SluiceStorage
import Synchronization
import Testing

/// A ledger in memory that counts its writes.
actor CountingLedger: DurableLeaseLedger {
    private(set) var records: [Int: LeaseRecord] = [:]
    private(set) var writes = 0
    func load() -> [LeaseRecord] { records.values.sorted { $0.partition < $1.partition } }
    func write(_ batch: [LeaseRecord], leaderEpoch: Int64?) {
        for record in batch { records[record.partition] = record }
        writes += 1
    }
}

/// A coordinator that steps down stops its service and, when it leads again, starts a new one on
/// the same ledger. The stopped service must never write to it again.
@Suite struct CoordinatorServiceStopTests {
    @Test func aStoppedServiceNeverWritesTheLedgerAgain() async throws {
        let ledger = CountingLedger()
        let service = try await CoordinatorService(partitions: 4, leaseTTLMs: 200, ledger: ledger, logger: .lines("test", { _ in }))
        _ = try await service.openSession("a")
        #expect(await ledger.writes == 1, "the four grants to a are one durable write")
        #expect(await ledger.records.values.allSatisfy { $0.owner == "a" && $0.epoch == 1 })
        await service.stop()
        let after = await ledger.writes
        // Everything that could write: a late session end, messages, a new session, a tick (a's
        // lease would lapse after 200 ms and be written as orphaned).
        await service.leave("a")
        await #expect(throws: ServiceStopped.self) {
            try await service.handle("a", .failed(partition: 0, epoch: 1, reason: "test"))
        }
        await #expect(throws: ServiceStopped.self) {
            try await service.renew("b", progress: [], eventsPerSecond: 0)
        }
        await #expect(throws: ServiceStopped.self) { try await service.openSession("b") }
        try await Task.sleep(for: .milliseconds(400))
        await service.tick()
        #expect(await ledger.writes == after)
    }
}
