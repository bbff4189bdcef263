import Dispatch
import SluiceCoordinator
import SluiceStorage
import Synchronization
import Testing

/// A ledger whose writes block (on its own executor, as the real stores' do) while `stall` is set:
/// a database that stopped answering.
actor StallingLedger: DurableLeaseLedger {
    private let executor = QueueExecutor(label: "test.stalling-ledger")
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    nonisolated let stall = Mutex(false)
    nonisolated let resume = DispatchSemaphore(value: 0)
    private(set) var records: [Int: LeaseRecord] = [:]

    func load() -> [LeaseRecord] { [] }

    func write(_ batch: [LeaseRecord], leaderEpoch: Int64?) {
        if stall.withLock({ $0 }) { _ = resume.wait(timeout: .now() + 30) }  // bounded: the test ends anyway
        for record in batch { records[record.partition] = record }
    }
}

/// While a durable write hangs, the coordinator's service goes on answering heartbeats: a slow
/// store must not let the leases of healthy workers lapse.
@Suite struct StalledLedgerTests {
    static func progress(_ partitions: [(Int, Int64)]) -> [CoordinatorCore.Progress] {
        partitions.map { .init(partition: $0.0, epoch: $0.1, offset: 0, committedOffset: 0, watermark: 0, lag: 0, finished: false) }
    }

    @Test("A heartbeat is answered at once while another change's ledger write hangs; only leases both outcomes keep are renewed")
    func heartbeatsDuringAStalledWrite() async throws {
        let ledger = StallingLedger()
        let service = try await CoordinatorService(partitions: 4, leaseTTLMs: 6_000, ledger: ledger, logger: .lines("test", { _ in }))
        _ = try await service.openSession("a")
        let all = (0..<4).map { ($0, Int64(1)) }
        #expect(try await service.renew("a", progress: Self.progress(all), eventsPerSecond: 0).count == 4)

        ledger.stall.withLock { $0 = true }
        // a reports partition 0 fenced: it is orphaned and granted again, a write that now hangs.
        let fenced = Task { try await service.handle("a", .fenced(partition: 0, epoch: 1)) }
        try await Task.sleep(for: .milliseconds(200))  // the change is under way, its write hanging

        let start = ContinuousClock.now
        let renewed = try await service.renew("a", progress: Self.progress(all), eventsPerSecond: 0)
        await service.tick()
        let answeredIn = ContinuousClock.now - start
        #expect(answeredIn < .seconds(2), "a heartbeat waited \(answeredIn) for a stalled ledger write")
        #expect(renewed.map(\.partition).sorted() == [1, 2, 3], "partition 0 is being moved; it must not be renewed: \(renewed)")
        #expect(await service.snapshot().partitions[0].epoch == 1, "the new grant became visible before it was durable")

        ledger.stall.withLock { $0 = false }
        ledger.resume.signal()
        try await fenced.value
        let after = await service.snapshot()
        #expect(after.partitions[0].owner == "a" && after.partitions[0].epoch == 2, "partition 0 not granted again after the write")
        #expect(await ledger.records[0]?.epoch == 2)
        // The heartbeat during the write counted for the other partitions in the outcome too.
        #expect(after.partitions[1...].allSatisfy { $0.owner == "a" && $0.epoch == 1 })
    }
}
