import Metrics
import ServiceLifecycle
import SluiceRuntime

/// Publishes a worker's counters and per-partition gauges to swift-metrics (served as Prometheus
/// text by SluiceOps). The hot path only bumps atomics in `RunStats`; this loop turns them into
/// counters twice a second, so exporting costs the partitions nothing.
public enum WorkerMetrics {
    /// Runs until the task is cancelled. Call after the metrics backend is bootstrapped.
    public static func export(from daemon: WorkerDaemon, every interval: Duration = .milliseconds(500)) async {
        let stats = daemon.stats
        let counters: [(Counter, RunStats.Counter)] = [
            (Counter(label: "sluice_events_in_total"), stats.events),
            (Counter(label: "sluice_rows_out_total"), stats.rows),
            (Counter(label: "sluice_late_events_total"), stats.late),
            (Counter(label: "sluice_dead_letters_total"), stats.deadLetters),
            (Counter(label: "sluice_commits_total"), stats.commits),
            (Counter(label: "sluice_commits_fenced_total"), stats.fencedCommits),
            (Counter(label: "sluice_checkpoint_failures_total"), stats.failures),
        ]
        var exported = [Int64](repeating: 0, count: counters.count)
        let held = Gauge(label: "sluice_partitions_held")
        var gauges: [Int: PartitionGauges] = [:]
        while !Task.isCancelled {
            for (i, (counter, source)) in counters.enumerated() {
                let now = source.current
                if now > exported[i] { counter.increment(by: now - exported[i]) }
                exported[i] = now
            }
            let partitions = await daemon.partitions()
            held.record(partitions.count)
            let current = Set(partitions.map(\.partition))
            for (p, g) in gauges where !current.contains(p) {
                g.destroy()  // the partition moved away: its series ends here
                gauges[p] = nil
            }
            for progress in partitions {
                let g = gauges[progress.partition] ?? PartitionGauges(partition: progress.partition)
                gauges[progress.partition] = g
                g.lag.record(progress.lag)
                g.committedOffset.record(progress.committedOffset)
                if progress.watermark != Int64.min { g.watermark.record(progress.watermark) }
            }
            try? await Task.sleep(for: interval)
        }
    }

    /// `export` as a `Service`: it stops at graceful shutdown.
    public struct Exporter: Service {
        public let daemon: WorkerDaemon
        public init(daemon: WorkerDaemon) { self.daemon = daemon }
        public func run() async {
            let daemon = self.daemon
            await cancelWhenGracefulShutdown { await WorkerMetrics.export(from: daemon) }
        }
    }

    private struct PartitionGauges {
        let lag: Gauge, watermark: Gauge, committedOffset: Gauge
        init(partition: Int) {
            let label = [("partition", String(partition))]
            lag = Gauge(label: "sluice_partition_lag_events", dimensions: label)
            watermark = Gauge(label: "sluice_partition_watermark_ms", dimensions: label)
            committedOffset = Gauge(label: "sluice_partition_committed_offset", dimensions: label)
        }
        func destroy() {
            lag.destroy()
            watermark.destroy()
            committedOffset.destroy()
        }
    }
}
