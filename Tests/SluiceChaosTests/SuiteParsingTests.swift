import Foundation
import Testing
@testable import SluiceChaos

@Suite struct SuiteParsingTests {
    /// The error names the field and what to do.
    private func refusal(_ yaml: String) -> SuiteError? {
        do {
            _ = try Suite.parse(yaml: yaml)
            return nil
        } catch let error as SuiteError {
            return error
        } catch {
            Issue.record("unexpected error \(error)")
            return nil
        }
    }

    private let base = "name: t\nfaults:\n"

    @Test func errorsNameTheField() throws {
        let cases: [(String, String, String)] = [
            (base + "  - {at: 5, kind: explode_worker, target: worker-1}", "faults[0].kind", "unknown fault kind 'explode_worker'"),
            (base + "  - {at: 5, kind: kill_worker}", "faults[0].target", "missing"),
            (base + "  - {at: 5, kind: kill_worker, target: worker-1}\n  - {at: 9, kind: pause_worker, target: worker-1}", "faults[1].for", "missing"),
            (base + "  - {at: 5, kind: cut_worker, target: worker-1, mode: jam, for: 3}", "faults[0].mode", "unknown mode 'jam'"),
            (base + "  - {at: 5, kind: cut_worker, target: worker-1, mode: delay, for: 3}", "faults[0].delay_ms", "missing"),
            (base + "  - {at: 5, kind: cut_worker, target: worker-1, mode: blackhole, direction: sideways, for: 3}", "faults[0].direction", "unknown direction"),
            (base + "  - {at: 5, kind: kill_coordinator, target: worker-1}", "faults[0].target", "not used by kill_coordinator"),
            (base + "  - {at: 5, kind: kill_worker, target: worker-9}", "faults[0].target", "worker-9 is not running at 5 s"),
            (base + "  - {at: 5, kind: remove_worker, target: worker-1}\n  - {at: 9, kind: pause_worker, target: worker-1, for: 2}", "faults[1].target", "worker-1 is not running at 9 s"),
            (base + "  - {at: 5, kind: restart_store}", "faults[0].kind", "needs `store: postgres`"),
            ("name: t\ntopology: {workers: 0}\nfaults: []", "topology.workers", "must be between 1 and 32"),
            ("name: t\ntopology: {workers: 2, wrokers: 3}\nfaults: []", "topology.wrokers", "unknown field"),
            ("name: t\nworkload: {events: many}\nfaults: []", "workload.events", "expected an integer"),
            ("name: t\nstore: mysql\nfaults: []", "store", "expected sqlite, postgres"),
            ("name: t\nrandom: {seed: 1, gap_s: [9, 3]}", "random.gap_s", "above high"),
            ("name: t\nrandom: {kinds: [kill_worker, cut_worker_from_store]}", "random.kinds[1]", "needs `store: postgres`"),
            ("name: t\nstore: postgres\nfaults:\n  - {at: 5, kind: fill_disk, target: worker-1, for: 3}", "faults[0].kind", "use cut_worker_from_store"),
            ("name: t\nstore: postgres://u@127.0.0.1:5432/db\nfaults:\n  - {at: 5, kind: restart_store}", "faults[0].kind", "cannot restart the server at postgres://u@127.0.0.1:5432/db"),
            ("name: t\nstore: postgres\nrandom: {kinds: [fill_disk]}", "random.kinds[0]", "'fill_disk' fails a worker's own file writes"),
            ("name: t\ntopology: {store_retry_ms: 5000}\nfaults:\n  - {at: 5, kind: kill_worker, target: worker-1}", "topology.store_retry_ms", "applies to `store: postgres` only"),
            ("name: t\nstore: postgres\ntopology: {store_retry_ms: 5}\nfaults: []", "topology.store_retry_ms", "must be between 100 and 3600000"),
            ("faults: []", "name", "missing"),
            ("name: t", "faults", "needs `faults:`, `random:` or both"),
        ]
        for (yaml, path, message) in cases {
            let error = refusal(yaml)
            #expect(error?.path == path, "for \(yaml): \(String(describing: error))")
            #expect(error?.message.contains(message) == true, "for \(yaml): \(String(describing: error))")
        }
    }

    @Test func parsesEveryFaultKindAndThePostgresStores() throws {
        let suite = try Suite.parse(yaml: """
            name: pg
            store: postgres
            topology: {workers: 2, partitions: 4, store_retry_ms: 5000}
            faults:
              - {at: 1, kind: restart_store, restart_after: 2}
              - {at: 2, kind: cut_worker_from_store, target: worker-1, mode: delay, delay_ms: 100, jitter_ms: 20, for: 3}
              - {at: 3, kind: cut_worker, target: worker-2, mode: bandwidth, bytes_per_s: 1000, direction: upstream, for: 4}
              - {at: 4, kind: add_worker}
            """)
        #expect(suite.store == .postgres(url: nil))
        #expect(suite.topology.storeRetryMs == 5000)
        #expect(suite.faults.map(\.kind) == [.restartStore, .cutWorkerFromStore, .cutWorker, .addWorker])
        #expect(suite.faults[0].restartAfter == 2)
        #expect(suite.faults[1].network == .delay(ms: 100, jitterMs: 20))
        #expect(suite.faults[2].direction == .upstream)
        // A given server: everything but restarting it.
        let given = try Suite.parse(yaml: """
            name: pg
            store: postgres://sluice@127.0.0.1:5432/sluice
            faults:
              - {at: 2, kind: cut_worker_from_store, target: worker-1, mode: reset, for: 3}
            """)
        #expect(given.store == .postgres(url: "postgres://sluice@127.0.0.1:5432/sluice"))
        let embedded = try Suite.parse(yaml: base + "  - {at: 5, kind: fill_disk, target: worker-3, for: 2, file_size_limit: 4096}")
        #expect(embedded.faults[0].fileSizeLimit == 4096)
    }

    @Test func theShippedSuitesParse() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        for name in ["smoke", "standard", "random"] {
            let suite = try Suite.load(path: root.appendingPathComponent("chaos/suites/\(name).yaml").path)
            #expect(suite.name == name)
            #expect(!Schedule.build(suite).isEmpty)
        }
        // standard has every fault kind the embedded store offers.
        let standard = try Suite.load(path: root.appendingPathComponent("chaos/suites/standard.yaml").path)
        #expect(Set(standard.faults.map(\.kind)) == Set(FaultKind.availableOnSQLite))
        let modes = Set(standard.faults.compactMap { $0.network?.name })
        #expect(modes == ["blackhole", "delay", "reset", "bandwidth"])
        // postgres has every fault kind that applies to PostgreSQL, and every mode between a worker and the database.
        let postgres = try Suite.load(path: root.appendingPathComponent("chaos/suites/postgres.yaml").path)
        #expect(postgres.name == "postgres")
        #expect(postgres.store == .postgres(url: nil))
        #expect(Set(postgres.faults.map(\.kind)) == Set(FaultKind.availableOnPostgres))
        let storeModes = Set(postgres.faults.filter { $0.kind == .cutWorkerFromStore }.compactMap { $0.network?.name })
        #expect(storeModes == ["blackhole", "delay", "reset", "bandwidth"])
        let storeDirections = Set(postgres.faults.filter { $0.kind == .cutWorkerFromStore }.map(\.direction))
        #expect(storeDirections.count >= 2)
    }
}
