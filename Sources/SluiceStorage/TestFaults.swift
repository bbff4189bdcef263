import Foundation

/// Deliberate bugs for the chaos harness's own tests: proof that its checks catch a broken build.
/// Compiled into debug builds only; a release build has none of them, whatever its environment.
public enum TestFaults {
    /// `SLUICE_TEST_FAULT=skip-epoch-check`: the fenced commit forgets to check the epoch, so a
    /// worker cut off from the coordinator goes on committing after its partition has moved.
    public static let skipEpochCheck: Bool = {
        #if DEBUG
        return ProcessInfo.processInfo.environment["SLUICE_TEST_FAULT"] == "skip-epoch-check"
        #else
        return false
        #endif
    }()
}
