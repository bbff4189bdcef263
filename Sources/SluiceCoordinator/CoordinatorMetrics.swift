import Metrics

/// The coordinator's metrics (exported by SluiceOps on /metrics).
public final class CoordinatorMetrics: Sendable {
    public let grants = Counter(label: "sluice_leases_granted_total")
    public let revocations = Counter(label: "sluice_leases_revoked_total")
    public let expirations = Counter(label: "sluice_leases_expired_total")
    public let fenced = Counter(label: "sluice_commits_fenced_total", dimensions: [("reported_by", "worker")])
    /// Partitions a worker stopped on an error that is not a fencing (a failing checkpoint store).
    public let failures = Counter(label: "sluice_partition_failures_total", dimensions: [("reported_by", "worker")])
    public let heartbeats = Counter(label: "sluice_heartbeats_total")
    /// From a partition losing its owner (lapse, fencing, failure) to its grant elsewhere.
    public let recovery = Metrics.Timer(label: "sluice_partition_recovery_seconds")
    public let workers = Gauge(label: "sluice_workers")
    public let unassigned = Gauge(label: "sluice_partitions_unassigned")
    /// 1 while this coordinator leads (always, for a single coordinator).
    public let leader = Gauge(label: "sluice_coordinator_leader")
}
