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
