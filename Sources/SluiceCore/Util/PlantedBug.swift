/// Deliberate protocol bugs for the deterministic simulator's own tests (SluiceSimulation): proof
/// that its invariants catch a broken build. Each pure core (`CoordinatorCore`, `WorkerCore`, the
/// simulated checkpoint store) keeps a set of them, empty by default, and consults it only through
/// `armed(_:)`, which is false in a release build whatever the set holds (`#if DEBUG`): release
/// behaviour never changes.
public enum PlantedBug: String, Sendable, CaseIterable, Hashable {
    /// The fenced commit forgets the epoch check (the simulated store; the SQLite store has the
    /// same bug behind `SLUICE_TEST_FAULT=skip-epoch-check`, `TestFaults`).
    case skipEpochCheck = "skip-epoch-check"
    /// `CoordinatorCore` grants a moving partition to its new owner together with the revoke,
    /// instead of after the old owner's release.
    case grantBeforeRelease = "grant-before-release"
    /// `CoordinatorCore` renews a lease it already let lapse when the old owner's heartbeat arrives.
    case coordinatorRenewsLapsedLease = "coordinator-renews-lapsed-lease"
    /// `WorkerCore` keeps running a lease that its heartbeat's renewal left out.
    case workerRenewsLapsedLease = "worker-renews-lapsed-lease"
    /// The Kafka sink's recovery skips `initTransactions` when its transactional id already has a
    /// producer session and goes on with it: no older producer is fenced, nothing left open is
    /// aborted (the simulator's model producer, `KafkaModelProducer`).
    case kafkaSkipRecoverInit = "kafka-skip-recover-init"
    /// The simulated worker publishes a checkpoint's output to Kafka before its store commit
    /// (which may then be fenced or fail) instead of after it.
    case kafkaPublishBeforeStoreCommit = "kafka-publish-before-store-commit"
    /// The modelled Kafka transaction coordinator does not fence older producers of a
    /// transactional id (librdkafka's mock cluster does not either).
    case kafkaModelNoFencing = "kafka-model-no-fencing"
    /// The sink's read of its committed progress takes what is below the last stable offset
    /// without waiting for the open transactions above it to end.
    case kafkaProgressBelowLSO = "kafka-progress-below-lso"
    /// The simulated CDC source confirms the newest committed checkpoint's position to its slot
    /// instead of the one before it (`PostgresCdcSource` confirms one behind), so a fallback past a
    /// corrupt newest checkpoint finds the changes it must replay gone.
    case cdcConfirmEarly = "cdc-confirm-early"

    /// Whether the bug lives in the Kafka sink's path (the simulator runs it with the Kafka sink).
    public var needsKafkaSink: Bool { rawValue.hasPrefix("kafka-") }
    /// Whether the bug lives in the CDC source's model (the simulator runs it with the CDC source).
    public var needsCdcSource: Bool { rawValue.hasPrefix("cdc-") }
}

extension Set where Element == PlantedBug {
    /// Whether `bug` is planted: always false in a release build.
    public func armed(_ bug: PlantedBug) -> Bool {
        #if DEBUG
        return contains(bug)
        #else
        return false
        #endif
    }
}
