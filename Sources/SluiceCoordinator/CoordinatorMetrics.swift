import Metrics

/// The coordinator's metrics (exported by SluiceOps on /metrics).
public final class CoordinatorMetrics: @unchecked Sendable {
    // Counters and recorders are thread-safe; `recoveriesSeen` is only touched by the service actor.
    public let grants = Counter(label: "sluice_leases_granted_total")
    public let revocations = Counter(label: "sluice_leases_revoked_total")
    public let expirations = Counter(label: "sluice_leases_expired_total")
    public let fenced = Counter(label: "sluice_commits_fenced_total", dimensions: [("reported_by", "worker")])
    public let heartbeats = Counter(label: "sluice_heartbeats_total")
    public let recoveryMs = Recorder(label: "sluice_partition_recovery_ms")
    var recoveriesSeen = 0
}
